package hub

import (
	"errors"
	"sync"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// ErrFull is returned by Join when the room is at its listener cap.
var ErrFull = errors.New("hub: room is full")

// Listener is one listener connection's place in a room.
type Listener struct {
	ID     string
	Lang   string
	Base64 bool // receives audioData JSON instead of binary frames
	// Codec is what it receives: protocol.CodecPCM16 or protocol.CodecOpus;
	// empty means the room's Format.
	Codec string
	Queue *Queue
}

// Tap is a processor's queue, which receives every source chunk in Codec
// (empty: the room's Format).
type Tap struct {
	Queue *Queue
	Codec string
}

// RoomOptions configure a room.
type RoomOptions struct {
	// SessionID goes in the base64 audioData messages, built at most once
	// per chunk, language and codec, only for languages with base64
	// listeners.
	SessionID string
	// Format is the codec of the source chunks Publish and Deliver take:
	// the session's audioFormat.
	Format string
	// OnDrop counts audio dropped for slow listeners.
	OnDrop func(n int)
	// StreamID goes in bytes 2-3 of the source frames sent to taps
	// (processors), so one connection can serve many sessions.
	StreamID uint16
}

// group is the listeners of one language, by delivery and codec (index:
// codecIndex).
type group struct {
	binary [2][]*Listener
	text   [2][]*Listener
}

func (g *group) len() int {
	return len(g.binary[0]) + len(g.binary[1]) + len(g.text[0]) + len(g.text[1])
}

func (g *group) has(ci int) bool { return len(g.binary[ci])+len(g.text[ci]) > 0 }

func (g *group) add(l *Listener, ci int) {
	if l.Base64 {
		g.text[ci] = append(g.text[ci], l)
	} else {
		g.binary[ci] = append(g.binary[ci], l)
	}
}

func (g *group) remove(l *Listener) {
	for ci := range g.binary {
		g.binary[ci] = without(g.binary[ci], l)
		g.text[ci] = without(g.text[ci], l)
	}
}

// codecIndex maps a codec to its slot in a group.
func codecIndex(codec string) int {
	if codec == protocol.CodecOpus {
		return 1
	}
	return 0
}

// codecOf is l's codec, the room's Format when it names none.
func (r *Room) codecOf(l *Listener) int {
	if l.Codec == "" {
		return codecIndex(r.opts.Format)
	}
	return codecIndex(l.Codec)
}

// Room is the fan-out of one session. Its lock is per session, so a join
// storm on one session never stalls another, and it is never held across a
// socket write: pushing to a Queue is a short in-memory operation.
type Room struct {
	opts RoomOptions

	mu        sync.Mutex
	listeners map[string]*Listener
	byLang    map[string]*group
	// seq holds the next sequence number per stream: "" is the source
	// stream, a language code a translated stream, and ConvertedStream keys
	// the streams a converter re-packetizes.
	seq    map[string]uint32
	served map[string]bool
	// taps receive every source chunk, framed with the stream ID: the
	// processors translating this session.
	taps []Tap
}

// NewRoom returns an empty room.
func NewRoom(o RoomOptions) *Room {
	return &Room{
		opts:      o,
		listeners: make(map[string]*Listener),
		byLang:    make(map[string]*group),
		seq:       make(map[string]uint32),
		served:    make(map[string]bool),
	}
}

// JoinResult describes the room right after a join.
type JoinResult struct {
	Count   int  // listeners, the joiner included
	NewLang bool // the joiner's language had no listener before
}

// Join adds l unless the room already holds max listeners (max <= 0 means no
// cap); the check and the insert are one atomic step. A listener whose ID is
// already present is replaced (idempotent re-join). allowOver lets a
// refreshing listener exceed the cap briefly.
func (r *Room) Join(l *Listener, max int, allowOver bool) (JoinResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.listeners[l.ID]; ok {
		r.removeLocked(old)
	} else if max > 0 && len(r.listeners) >= max && !allowOver {
		return JoinResult{Count: len(r.listeners)}, ErrFull
	}
	g := r.byLang[l.Lang]
	newLang := g == nil || g.len() == 0
	if g == nil {
		g = &group{}
		r.byLang[l.Lang] = g
	}
	g.add(l, r.codecOf(l))
	r.listeners[l.ID] = l
	return JoinResult{Count: len(r.listeners), NewLang: newLang}, nil
}

// Leave removes the listener with id, reporting whether it was present and
// whether its language is now empty.
func (r *Room) Leave(id string) (present, langEmptied bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.listeners[id]
	if !ok {
		return false, false
	}
	return true, r.removeLocked(l)
}

func (r *Room) removeLocked(l *Listener) (langEmptied bool) {
	delete(r.listeners, l.ID)
	g := r.byLang[l.Lang]
	if g == nil {
		return false
	}
	g.remove(l)
	if g.len() == 0 {
		delete(r.byLang, l.Lang)
		return true
	}
	return false
}

func without(s []*Listener, l *Listener) []*Listener {
	for i, x := range s {
		if x == l {
			last := len(s) - 1
			s[i] = s[last]
			s[last] = nil
			return s[:last]
		}
	}
	return s
}

// ChangeLanguage moves a listener to lang. It reports whether lang is new to
// the room and whether the old language became empty.
func (r *Room) ChangeLanguage(id, lang string) (newLang, oldEmptied bool, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, found := r.listeners[id]
	if !found {
		return false, false, false
	}
	if l.Lang == lang {
		return false, false, true
	}
	oldEmptied = r.removeLocked(l)
	moved := *l
	moved.Lang = lang
	g := r.byLang[lang]
	newLang = g == nil || g.len() == 0
	if g == nil {
		g = &group{}
		r.byLang[lang] = g
	}
	nl := &moved
	g.add(nl, r.codecOf(nl))
	r.listeners[id] = nl
	return newLang, oldEmptied, true
}

// Count is the number of listeners.
func (r *Room) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.listeners)
}

// Distribution returns the listener count per language, listing only
// languages with at least one listener.
func (r *Room) Distribution() (total int, byLang map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byLang = make(map[string]int, len(r.byLang))
	for lang, g := range r.byLang {
		if n := g.len(); n > 0 {
			byLang[lang] = n
		}
	}
	return len(r.listeners), byLang
}

// Languages returns the languages that have listeners.
func (r *Room) Languages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.byLang))
	for lang := range r.byLang {
		out = append(out, lang)
	}
	return out
}

// Broadcast queues a control message to every listener.
func (r *Room) Broadcast(m *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.listeners {
		l.Queue.Push(m)
	}
}

// SetServed marks whether a translated audio stream serves lang. Listeners
// of a served language get that stream instead of the source; a language
// translated with captions only is not served here: its listeners keep the
// source stream, and captions reach them through SendToLanguage either way.
func (r *Room) SetServed(lang string, served bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if served {
		r.served[lang] = true
	} else {
		delete(r.served, lang)
	}
}

// Served reports whether lang has a translated audio stream.
func (r *Room) Served(lang string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served[lang]
}

// NextSeq returns the sequence number the next chunk of the source stream
// will carry.
func (r *Room) NextSeq() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq[""]
}

// RaiseNextSeq moves the source stream's next number up to next, never
// back, so a session resumed on another node or after a restart continues
// above every number already used.
func (r *Room) RaiseNextSeq(next uint32) { r.RaiseSeq("", next) }

// RaiseSeq moves stream's next number up to next, never back.
func (r *Room) RaiseSeq(stream string, next uint32) {
	r.mu.Lock()
	r.raiseLocked(stream, next)
	r.mu.Unlock()
}

// raiseLocked moves stream's next number up to next. Numbers compare as
// integers except across the 2^32 wrap.
func (r *Room) raiseLocked(stream string, next uint32) {
	if cur := r.seq[stream]; next > cur || cur-next > 1<<31 {
		r.seq[stream] = next
	}
}

// ConvertedStream keys the counter of a stream made by re-packetizing
// another into codec: the source stream (lang "") or lang's translated
// stream.
func ConvertedStream(codec, lang string) string { return codec + "/" + lang }

// TakeSeq returns stream's next number and moves past it.
func (r *Room) TakeSeq(stream string) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.seq[stream]
	r.seq[stream] = seq + 1
	return seq
}

// WantsSource reports whether anyone here takes the source stream in codec:
// a listener of a language the source reaches (sourceLang's, or one no
// translated stream serves), or a tap.
func (r *Room) WantsSource(sourceLang, codec string) bool {
	ci := codecIndex(codec)
	r.mu.Lock()
	defer r.mu.Unlock()
	for lang, g := range r.byLang {
		if (lang == sourceLang || !r.served[lang]) && g.has(ci) {
			return true
		}
	}
	for _, t := range r.taps {
		if r.tapCodec(t) == ci {
			return true
		}
	}
	return false
}

// WantsTranslated reports whether lang has listeners here taking codec.
func (r *Room) WantsTranslated(lang, codec string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.byLang[lang]
	return g != nil && g.has(codecIndex(codec))
}

func (r *Room) tapCodec(t Tap) int {
	if t.Codec == "" {
		return codecIndex(r.opts.Format)
	}
	return codecIndex(t.Codec)
}

// Publish stamps a source chunk (in the room's Format), frames it once per
// encoding and language that needs it, and queues it to every listener of
// that codec not served by a translated stream, and to the taps of that
// codec. It returns the chunk's sequence number and how many listeners it
// was queued to. sourceLang listeners always get it. The chunk must not be
// changed afterwards.
func (r *Room) Publish(sourceLang string, chunk []byte, ingest time.Time) (seq uint32, queued int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq = r.seq[""]
	r.raiseLocked("", seq+1)
	return seq, r.sourceLocked(sourceLang, r.opts.Format, seq, chunk, ingest)
}

// Deliver fans out a source chunk numbered elsewhere: by the cluster's
// shared counter, on whichever node the speaker is.
func (r *Room) Deliver(sourceLang string, seq uint32, ingest time.Time, chunk []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raiseLocked("", seq+1)
	return r.sourceLocked(sourceLang, r.opts.Format, seq, chunk, ingest)
}

// DeliverConverted fans out a source chunk converted into codec (numbered
// by its converter) to the listeners and taps of that codec.
func (r *Room) DeliverConverted(sourceLang, codec string, seq uint32, ingest time.Time, chunk []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sourceLocked(sourceLang, codec, seq, chunk, ingest)
}

func (r *Room) sourceLocked(sourceLang, codec string, seq uint32, chunk []byte, ingest time.Time) (queued int) {
	ci := codecIndex(codec)
	var bin *Message
	dropped := 0
	for lang, g := range r.byLang {
		if lang != sourceLang && r.served[lang] {
			continue
		}
		if len(g.binary[ci]) > 0 {
			if bin == nil {
				bin = newAudioFrame(protocol.KindSource, 0, seq, ingest, chunk)
			}
			queued += pushAll(g.binary[ci], bin, &dropped)
		}
		if len(g.text[ci]) > 0 {
			txt := newAudioText(r.opts.SessionID, codec, lang, protocol.KindSource, seq, ingest, chunk)
			queued += pushAll(g.text[ci], txt, &dropped)
		}
	}
	var tap *Message
	for _, t := range r.taps {
		if r.tapCodec(t) != ci {
			continue
		}
		if tap == nil {
			tap = newAudioFrame(protocol.KindSource, r.opts.StreamID, seq, ingest, chunk)
		}
		_, d := t.Queue.Push(tap)
		dropped += d
	}
	if dropped > 0 && r.opts.OnDrop != nil {
		r.opts.OnDrop(dropped)
	}
	return queued
}

// SetTaps replaces the queues that receive every source chunk.
func (r *Room) SetTaps(taps []Tap) {
	r.mu.Lock()
	r.taps = taps
	r.mu.Unlock()
}

// PublishTranslated queues a translated chunk in codec to the listeners of
// lang that take codec, with that stream's own sequence numbers.
func (r *Room) PublishTranslated(lang, codec string, chunk []byte, ingest time.Time) (seq uint32, queued int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq = r.seq[lang]
	r.seq[lang] = seq + 1
	return seq, r.translatedLocked(lang, codec, seq, chunk, ingest)
}

// DeliverTranslated queues a translated chunk converted into codec (numbered
// by its converter) to the listeners of lang that take codec.
func (r *Room) DeliverTranslated(lang, codec string, seq uint32, ingest time.Time, chunk []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.translatedLocked(lang, codec, seq, chunk, ingest)
}

func (r *Room) translatedLocked(lang, codec string, seq uint32, chunk []byte, ingest time.Time) (queued int) {
	g := r.byLang[lang]
	if g == nil {
		return 0
	}
	ci := codecIndex(codec)
	dropped := 0
	if len(g.binary[ci]) > 0 {
		queued += pushAll(g.binary[ci], newAudioFrame(protocol.KindTranslated, 0, seq, ingest, chunk), &dropped)
	}
	if len(g.text[ci]) > 0 {
		txt := newAudioText(r.opts.SessionID, codec, lang, protocol.KindTranslated, seq, ingest, chunk)
		queued += pushAll(g.text[ci], txt, &dropped)
	}
	if dropped > 0 && r.opts.OnDrop != nil {
		r.opts.OnDrop(dropped)
	}
	return queued
}

// SendToLanguage queues a control message (a caption) to the listeners of
// lang.
func (r *Room) SendToLanguage(lang string, m *Message) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.byLang[lang]
	if g == nil {
		return 0
	}
	for ci := range g.binary {
		for _, l := range g.binary[ci] {
			l.Queue.Push(m)
		}
		for _, l := range g.text[ci] {
			l.Queue.Push(m)
		}
	}
	return g.len()
}

func pushAll(ls []*Listener, m *Message, dropped *int) int {
	n := 0
	for _, l := range ls {
		ok, d := l.Queue.Push(m)
		*dropped += d
		if ok {
			n++
		}
	}
	return n
}
