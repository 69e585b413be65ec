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
// one that serves the language. When it leaves, the next one takes over, and
// listeners hear the source while none does.
type Processor struct {
	s     *Service
	conn  Conn
	langs map[string]bool // nil: every language
	codec string          // what it asked for: the codec it takes and publishes

	mu       sync.Mutex
	assigned map[string][]string // session ID → languages it serves there
}

// Serves reports whether the processor takes lang.
func (p *Processor) Serves(lang string) bool { return p.langs == nil || p.langs[lang] }

// Languages returns the processor's language filter, empty for all.
func (p *Processor) Languages() []string {
	out := make([]string, 0, len(p.langs))
	for l := range p.langs {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ParseLanguageFilter validates a processor's languages= list.
func ParseLanguageFilter(list string) (map[string]bool, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, code := range strings.Split(list, ",") {
		c, err := pentecost.CheckTargetLanguage("languages", code)
		if err != nil {
			return nil, err
		}
		m[c] = true
	}
	return m, nil
}

// AttachProcessor registers a processor connection. It is told about every
// live session (sessionStarted) and is given the languages it should serve.
// codec is what it asked to take and publish (empty: pcm16); each
// sessionStarted says what it gets in that session (docs/protocol.md 7.4).
func (s *Service) AttachProcessor(_ context.Context, c Conn, langs map[string]bool, codec string) *Processor {
	if codec == "" {
		codec = protocol.CodecPCM16
	}
	p := &Processor{s: s, conn: c, langs: langs, codec: codec, assigned: map[string][]string{}}
	s.procMu.Lock()
	s.procs = append(s.procs, p)
	s.procMu.Unlock()
	now := s.clock.Now()
	send(c, &protocol.ProcessorAttached{
		Header:       protocol.H(protocol.TypeProcessorAttached, now),
		ConnectionID: c.ID(),
		Languages:    p.Languages(),
		Codec:        codec,
	})
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

// rebalance assigns every target language with listeners to a processor,
// keeping current assignments where the processor is still attached, and
// tells whoever is affected: processors get languagesChanged, listeners whose
// audio switches between source and translation get languageChanged.
// joining names a language about to get its first listener, so that
// listener's sessionJoined can already say it is translated.
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
		if lang == src {
			continue
		}
		if cur := l.assign[lang]; cur != nil && attached(cur) && cur.Serves(lang) {
			next[lang] = cur
			continue
		}
		for _, p := range procs {
			if p.Serves(lang) {
				next[lang] = p
				break
			}
		}
	}

	// Who needs telling.
	touched := map[*Processor]bool{}
	var flipped []string
	for lang, p := range l.assign {
		if next[lang] != p {
			touched[p] = true
			if next[lang] == nil {
				flipped = append(flipped, lang)
			}
		}
	}
	for lang, p := range next {
		if l.assign[lang] != p {
			touched[p] = true
			if l.assign[lang] == nil {
				flipped = append(flipped, lang)
			}
			// The lag estimate pairs this processor's chunks with the
			// source chunks sent from now on.
			l.translatedFrames[lang] = 0
			l.translatedBase[lang] = l.room.NextSeq()
		}
	}
	old := l.assign
	l.assign = next
	now := l.s.clock.Now()

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

	for lang := range old {
		if next[lang] == nil {
			l.room.SetServed(lang, false)
		}
	}
	for lang := range next {
		l.room.SetServed(lang, true)
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
		msg := hub.NewControl(protocol.Marshal(&protocol.LanguageChanged{
			Header:         protocol.H(protocol.TypeLanguageChanged, now),
			SessionID:      l.id,
			TargetLanguage: lang,
			SourceLanguage: src,
			Translated:     next[lang] != nil,
		}))
		l.room.SendToLanguage(lang, msg)
	}
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
	// The transcript (a caption in the source language) may come from any
	// processor working on the session: it hears the source anyway.
	transcriber := c == src && (len(l.langsOfLocked(p)) > 0 || p.Serves(src))
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
		return pentecost.Invalid("targetLanguage", "the source language is not translated")
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
