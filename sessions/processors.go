package sessions

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
)

// maxCaption bounds a caption's text.
const maxCaption = 2000

// Processor is a translation engine's connection. Each (session, language)
// with listeners is served by at most one processor: the longest-attached
// one that serves the language with audio, else the longest-attached one
// that serves it with captions only. When it leaves, the next one takes
// over, and listeners hear the source while none does. The source language
// itself is served only by a transcript processor, with captions only (the
// transcript), while it has listeners.
type Processor struct {
	s          *Service
	conn       Conn
	langs      map[string]bool // nil: every language
	audio      map[string]bool // nil: audio for every language it serves; empty: none
	codec      string          // what it asked for: the codec it takes and publishes
	transcript bool            // it publishes the transcript when given the source language

	mu       sync.Mutex
	assigned map[string][]string // session ID → languages it serves there
}

// ProcessorParams are what a processor says about itself when it attaches.
type ProcessorParams struct {
	// Languages it serves; nil serves every language.
	Languages map[string]bool
	// Audio holds the languages it publishes translated audio for; nil
	// means every language it serves, an empty map none (captions only).
	// For a language it serves without audio, listeners keep the source
	// audio and get its captions.
	Audio map[string]bool
	// Codec it takes the sessions' audio in and publishes its translations
	// in: protocol.CodecPCM16 (also when empty) or protocol.CodecOpus.
	Codec string
	// Transcript says it publishes the transcript: it may be assigned a
	// session's source language (when Languages admits it), captions only,
	// so that source-language listeners get captions even while nobody
	// listens in another language.
	Transcript bool
}

// Serves reports whether the processor takes lang.
func (p *Processor) Serves(lang string) bool { return p.langs == nil || p.langs[lang] }

// SendsAudio reports whether the processor publishes translated audio for
// lang (when it serves lang as a target language; the source language is
// never served with audio).
func (p *Processor) SendsAudio(lang string) bool { return p.audio == nil || p.audio[lang] }

// Transcribes reports whether the processor may be assigned src, the
// session's source language: it attached as a transcript processor and its
// filter admits src.
func (p *Processor) Transcribes(src string) bool { return p.transcript && p.Serves(src) }

// eligible reports whether p may serve lang in a session whose source
// language is src.
func (p *Processor) eligible(lang, src string) bool {
	if lang == src {
		return p.Transcribes(src)
	}
	return p.Serves(lang)
}

// audioFor reports whether p serving lang sends audio for it: never for
// the source language, whose listeners keep the speaker.
func (p *Processor) audioFor(lang, src string) bool { return lang != src && p.SendsAudio(lang) }

// Languages returns the processor's language filter, empty for all.
func (p *Processor) Languages() []string { return sortedKeys(p.langs) }

// AudioLanguages returns the languages the processor publishes audio for,
// and false when that is every language it serves.
func (p *Processor) AudioLanguages() ([]string, bool) {
	if p.audio == nil {
		return nil, false
	}
	return sortedKeys(p.audio), true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for l := range m {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ParseLanguageFilter validates a processor's languages= list.
func ParseLanguageFilter(list string) (map[string]bool, error) {
	return parseCodes("languages", list)
}

func parseCodes(field, list string) (map[string]bool, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, code := range strings.Split(list, ",") {
		c, err := pentecost.CheckTargetLanguage(field, code)
		if err != nil {
			return nil, err
		}
		m[c] = true
	}
	return m, nil
}

// ParseProcessorParams validates a processor's languages= and audio=
// parameters. audio is empty or "all" (audio for every language it serves,
// the default, as before the parameter existed), "none" (captions only), or
// a list of languages, each of which languages= must include when it names
// any.
func ParseProcessorParams(languages, audio string) (ProcessorParams, error) {
	langs, err := ParseLanguageFilter(languages)
	if err != nil {
		return ProcessorParams{}, err
	}
	p := ProcessorParams{Languages: langs}
	switch strings.ToLower(strings.TrimSpace(audio)) {
	case "", "all":
		return p, nil
	case "none":
		p.Audio = map[string]bool{}
		return p, nil
	}
	for _, code := range strings.Split(audio, ",") {
		if k := strings.ToLower(strings.TrimSpace(code)); k == "all" || k == "none" {
			return ProcessorParams{}, pentecost.Invalid("audio", `"all" and "none" stand alone, not in a list`)
		}
	}
	a, err := parseCodes("audio", audio)
	if err != nil {
		return ProcessorParams{}, err
	}
	for c := range a {
		if langs != nil && !langs[c] {
			return ProcessorParams{}, pentecost.Invalid("audio", "names a language that languages does not include").
				With("languageCode", c)
		}
	}
	p.Audio = a
	return p, nil
}

// ParseTranscript reads a processor's transcript= parameter: "true" or
// "false" (any case), empty or absent for false.
func ParseTranscript(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, pentecost.Invalid("transcript", `must be "true" or "false"`)
}

// AttachProcessor registers a processor connection. It is told about every
// live session (sessionStarted) and is given the languages it should serve.
// Its codec (params.Codec: what it asked to take and publish; empty: pcm16);
// each sessionStarted says what it gets in that session (docs/protocol.md
// 7.4).
func (s *Service) AttachProcessor(_ context.Context, c Conn, params ProcessorParams) *Processor {
	codec := params.Codec
	if codec == "" {
		codec = protocol.CodecPCM16
	}
	p := &Processor{s: s, conn: c, langs: params.Languages, audio: params.Audio, codec: codec, transcript: params.Transcript, assigned: map[string][]string{}}
	s.procMu.Lock()
	s.procs = append(s.procs, p)
	s.procMu.Unlock()
	now := s.clock.Now()
	msg := &protocol.ProcessorAttached{
		Header:       protocol.H(protocol.TypeProcessorAttached, now),
		ConnectionID: c.ID(),
		Languages:    p.Languages(),
		Codec:        codec,
		Transcript:   p.transcript,
	}
	if a, listed := p.AudioLanguages(); listed {
		msg.Audio = &a
	}
	send(c, msg)
	for _, l := range s.held() {
		l.mu.Lock()
		if !l.ended {
			send(c, l.sessionStartedLocked(l.codecFor(codec)))
		}
		l.mu.Unlock()
		l.rebalance("")
	}
	s.obs.Processors(s.processorCount())
	return p
}

// Leave is called when the processor's connection has ended: its languages
// fail over to the next processor that serves them, or back to the source.
func (p *Processor) Leave() {
	s := p.s
	s.procMu.Lock()
	s.procs = slices.DeleteFunc(s.procs, func(x *Processor) bool { return x == p })
	s.procMu.Unlock()
	p.mu.Lock()
	ids := make([]string, 0, len(p.assigned))
	for id := range p.assigned {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		if l := s.find(id); l != nil {
			l.rebalance("")
		}
	}
	s.obs.Processors(s.processorCount())
}

func (s *Service) processorCount() int {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	return len(s.procs)
}

// sessionStartedLocked announces the session to a processor that gets its
// audio in codec.
func (l *liveSession) sessionStartedLocked(codec string) *protocol.SessionStarted {
	return &protocol.SessionStarted{
		Header:         protocol.H(protocol.TypeSessionStarted, l.s.clock.Now()),
		SessionID:      l.id,
		StreamID:       l.streamID,
		SourceLanguage: *l.sourceLang.Load(),
		AudioFormat:    codec,
		SampleRate:     protocol.SampleRate,
		PacketMs:       l.packetMs,
	}
}

// announceLocked tells every processor a session is live, marshalled once
// per codec.
func (l *liveSession) announceLocked() {
	msgs := map[string]*hub.Message{}
	l.s.procMu.Lock()
	defer l.s.procMu.Unlock()
	for _, p := range l.s.procs {
		codec := l.codecFor(p.codec)
		if msgs[codec] == nil {
			msgs[codec] = hub.NewControl(protocol.Marshal(l.sessionStartedLocked(codec)))
		}
		p.conn.Queue().Push(msgs[codec])
	}
}

// delivery is what the listeners of a language get: audio made for their
// language (the speaker's own for the source language, else a processor's
// translation), and captions (a processor serves the language: its
// translation, or for the source language the transcript).
type delivery struct{ translated, captions bool }

// deliveryOf is lang's delivery under assign in a session whose source
// language is src.
func deliveryOf(assign map[string]*Processor, lang, src string) delivery {
	p := assign[lang]
	return delivery{translated: lang == src || (p != nil && p.audioFor(lang, src)), captions: p != nil}
}

// rebalance assigns every language with listeners to a processor, keeping
// current assignments where the processor is still attached and still
// eligible, and tells whoever is affected: processors get languagesChanged,
// listeners whose delivery changes get languageChanged. Target languages
// go to processors that serve them; the source language only to a
// transcript processor, captions only. joining names a language about to
// get its first listener, so that listener's sessionJoined can already say
// what it gets.
func (l *liveSession) rebalance(joining string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.s.procMu.Lock()
	procs := slices.Clone(l.s.procs)
	l.s.procMu.Unlock()
	attached := func(p *Processor) bool { return slices.Contains(procs, p) }

	src := *l.sourceLang.Load()
	next := map[string]*Processor{}
	needed := l.room.Languages()
	if joining != "" && !slices.Contains(needed, joining) {
		needed = append(needed, joining)
	}
	for _, lang := range needed {
		if cur := l.assign[lang]; cur != nil && attached(cur) && cur.eligible(lang, src) {
			next[lang] = cur
			continue
		}
		if p := pick(procs, lang, src); p != nil {
			next[lang] = p
		}
	}

	// Who needs telling: processors whose languages change, and listeners
	// whose language changes what it delivers (nothing, captions only,
	// audio). While a new source language has not been announced to the
	// listeners here, the announcement that follows tells every one of
	// them (sourceChanged).
	touched := map[*Processor]bool{}
	for lang, p := range l.assign {
		if next[lang] != p {
			touched[p] = true
		}
	}
	for lang, p := range next {
		if old := l.assign[lang]; old != p {
			touched[p] = true
			// The lag estimate pairs this processor's chunks with the
			// source chunks sent from now on.
			l.translatedFrames[lang] = 0
			l.translatedBase[lang] = l.room.NextSeq()
		}
	}
	var flipped []string
	if l.notifiedSrc == src {
		for _, lang := range languagesOf(l.assign, next) {
			if deliveryOf(l.assign, lang, src) != deliveryOf(next, lang, src) {
				flipped = append(flipped, lang)
			}
		}
	}
	old := l.assign
	l.assign = next
	now := l.s.clock.Now()

	// The source language is no language pair: its transcript is counted
	// nowhere (docs/operations.md).
	served, unserved := 0, 0
	for _, lang := range needed {
		if lang == src {
			continue
		}
		if next[lang] != nil {
			served++
		} else {
			unserved++
		}
	}
	l.s.obs.LanguagePairs(l.id, served, unserved)

	// Only a language served with audio leaves the source stream; one
	// served with captions only keeps it, and so does the source language
	// whoever transcribes it.
	for lang := range old {
		if next[lang] == nil {
			l.room.SetServed(lang, false)
		}
	}
	for lang, p := range next {
		l.room.SetServed(lang, p.audioFor(lang, src))
	}
	var taps []hub.Tap
	for _, p := range procs {
		langs := l.langsOfLocked(p)
		p.mu.Lock()
		if len(langs) == 0 {
			delete(p.assigned, l.id)
		} else {
			p.assigned[l.id] = langs
			taps = append(taps, hub.Tap{Queue: p.conn.Queue(), Codec: l.codecFor(p.codec)})
		}
		p.mu.Unlock()
	}
	l.room.SetTaps(taps)
	l.tapped.Store(len(taps) > 0)
	for p := range touched {
		if !attached(p) {
			continue
		}
		send(p.conn, &protocol.LanguagesChanged{
			Header:    protocol.H(protocol.TypeLanguagesChanged, now),
			SessionID: l.id,
			StreamID:  l.streamID,
			Languages: l.langsOfLocked(p),
		})
	}
	for _, lang := range flipped {
		d := deliveryOf(next, lang, src)
		msg := hub.NewControl(protocol.Marshal(&protocol.LanguageChanged{
			Header:         protocol.H(protocol.TypeLanguageChanged, now),
			SessionID:      l.id,
			TargetLanguage: lang,
			SourceLanguage: src,
			Translated:     d.translated,
			Captions:       d.captions,
		}))
		l.room.SendToLanguage(lang, msg)
	}
}

// languagesOf lists the languages assigned in a or b, sorted.
func languagesOf(a, b map[string]*Processor) []string {
	out := make([]string, 0, len(a)+len(b))
	for lang := range a {
		out = append(out, lang)
	}
	for lang := range b {
		if _, ok := a[lang]; !ok {
			out = append(out, lang)
		}
	}
	slices.Sort(out)
	return out
}

// pick chooses a processor for a language nobody serves in a session whose
// source language is src: the first, in attach order, that serves it with
// audio, else the first that serves it with captions only, else nil.
// Listeners get a voice where one exists. For src itself that is the first
// transcript processor whose filter admits it.
func pick(procs []*Processor, lang, src string) *Processor {
	var captions *Processor
	for _, p := range procs {
		if !p.eligible(lang, src) {
			continue
		}
		if p.audioFor(lang, src) {
			return p
		}
		if captions == nil {
			captions = p
		}
	}
	return captions
}

// langsOfLocked lists the languages p serves in this session.
func (l *liveSession) langsOfLocked(p *Processor) []string {
	out := []string{}
	for lang, q := range l.assign {
		if q == p {
			out = append(out, lang)
		}
	}
	slices.Sort(out)
	return out
}

// finishProcessorsLocked tells processors the session ended and forgets its
// assignments.
func (l *liveSession) finishProcessorsLocked(reason, message string) {
	l.s.procMu.Lock()
	procs := slices.Clone(l.s.procs)
	l.s.procMu.Unlock()
	msg := hub.NewControl(protocol.Marshal(&protocol.SessionEnded{
		Header: protocol.H(protocol.TypeSessionEnded, l.s.clock.Now()), SessionID: l.id, Reason: reason, Message: message,
	}))
	for _, p := range procs {
		p.mu.Lock()
		delete(p.assigned, l.id)
		p.mu.Unlock()
		p.conn.Queue().Push(msg)
	}
	l.assign = map[string]*Processor{}
	l.room.SetTaps(nil)
	l.tapped.Store(false)
	l.s.obs.LanguagePairs(l.id, 0, 0)
}

// resolve finds the live session a processor frame is for and checks the
// processor serves lang there.
func (p *Processor) resolve(sessionID string, streamID uint16, byStream bool, lang string) (*liveSession, string, error) {
	s := p.s
	var l *liveSession
	if byStream {
		s.mu.RLock()
		l = s.byStream[streamID]
		s.mu.RUnlock()
		if l == nil {
			return nil, "", pentecost.Invalid("streamId", "no live session has this stream id").With("streamId", int(streamID))
		}
	} else {
		if sessionID == "" {
			return nil, "", pentecost.Missing("sessionId")
		}
		if l = s.find(sessionID); l == nil {
			return nil, "", pentecost.NotFound(sessionID)
		}
	}
	c, err := pentecost.CheckTargetLanguage("targetLanguage", lang)
	if err != nil {
		return nil, "", err
	}
	l.mu.Lock()
	ok := l.assign[c] == p
	src := *l.sourceLang.Load()
	// The transcript (a caption in the source language) is the assigned
	// transcript processor's alone. While none is assigned, it may come
	// from any processor working on the session (it hears the source
	// anyway), as before transcript processors existed.
	transcriber := c == src && l.assign[src] == nil && (len(l.langsOfLocked(p)) > 0 || p.Serves(src))
	l.mu.Unlock()
	if !ok && !transcriber {
		return nil, "", pentecost.Errorf(pentecost.ErrForbidden, "this processor is not serving %s for session %s", c, l.id).
			With("sessionId", l.id).With("languageCode", c)
	}
	return l, c, nil
}

// PublishAudio fans a translated chunk out to the listeners of lang.
// byStream selects the binary frame's stream ID over sessionID.
func (p *Processor) PublishAudio(sessionID string, streamID uint16, byStream bool, lang string, chunk []byte) error {
	l, lang, err := p.resolve(sessionID, streamID, byStream, lang)
	if err != nil {
		return err
	}
	if lang == *l.sourceLang.Load() {
		// Its listeners hear the speaker; the transcript is text.
		return pentecost.Errorf(pentecost.ErrForbidden, "%s is the source language: it may have captions only (the transcript)", lang).
			With("sessionId", l.id).With("languageCode", lang)
	}
	if !p.SendsAudio(lang) {
		// Its listeners hear the source: a translated chunk mixed in
		// would be a second stream on the same connection.
		return pentecost.Errorf(pentecost.ErrForbidden, "this processor attached without audio for %s: it may publish captions only", lang).
			With("sessionId", l.id).With("languageCode", lang)
	}
	codec := l.codecFor(p.codec)
	if err := checkChunk(codec, chunk); err != nil {
		return err
	}
	if l.gated.Load() {
		return nil
	}
	now := l.s.clock.Now()
	seq, _ := l.room.PublishTranslated(lang, codec, chunk, now)
	l.convertTranslated(lang, codec, seq, now, chunk)
	if d, ok := l.processingLag(lang, now); ok {
		l.s.obs.ProcessingLag(lang, d)
	}
	return nil
}

// processingLag estimates ingest-to-translation time: the n-th translated
// chunk of a language answers the n-th source chunk sent since the language
// was assigned. Exact for processors that emit one chunk per chunk, an
// estimate for others.
func (l *liveSession) processingLag(lang string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.translatedFrames[lang]
	l.translatedFrames[lang] = n + 1
	seq := l.translatedBase[lang] + n
	l.ingestMu.Lock()
	t := l.ingest[seq%uint32(len(l.ingest))]
	l.ingestMu.Unlock()
	if t.seq != seq || t.at.IsZero() {
		return 0, false
	}
	return now.Sub(t.at), true
}

// PublishCaption sends a caption to the listeners of lang; a caption in the
// source language is the transcript.
func (p *Processor) PublishCaption(sessionID, lang, text string, final bool) error {
	l, lang, err := p.resolve(sessionID, 0, false, lang)
	if err != nil {
		return err
	}
	if len(text) > maxCaption {
		return pentecost.Invalid("text", "a caption is at most 2000 bytes")
	}
	l.mu.Lock()
	seq := l.captionSeq[lang]
	l.captionSeq[lang] = seq + 1
	l.mu.Unlock()
	l.room.SendToLanguage(lang, hub.NewControl(protocol.Marshal(&protocol.Caption{
		Header:         protocol.H(protocol.TypeCaption, l.s.clock.Now()),
		SessionID:      l.id,
		TargetLanguage: lang,
		Text:           text,
		Final:          final,
		SequenceNumber: seq,
	})))
	return nil
}
