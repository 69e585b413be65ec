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
	Queue  *Queue
}

// RoomOptions configure a room.
type RoomOptions struct {
	// SessionID and Format go in the base64 audioData messages, built at
	// most once per chunk and language, only for languages with base64
	// listeners.
	SessionID string
	Format    string
	// OnDrop counts audio dropped for slow listeners.
	OnDrop func(n int)
	// StreamID goes in bytes 2-3 of the source frames sent to taps
	// (processors), so one connection can serve many sessions.
	StreamID uint16
}

type group struct {
	binary []*Listener
	text   []*Listener
}

func (g *group) len() int { return len(g.binary) + len(g.text) }

// Room is the fan-out of one session. Its lock is per session, so a join
// storm on one session never stalls another, and it is never held across a
// socket write: pushing to a Queue is a short in-memory operation.
type Room struct {
	opts RoomOptions

	mu        sync.Mutex
	listeners map[string]*Listener
	byLang    map[string]*group
	// seq holds the next sequence number per stream: "" is the source
	// stream, a language code a translated stream.
	seq    map[string]uint32
	served map[string]bool
	// taps receive every source chunk, framed with the stream ID: the
	// processors translating this session.
	taps []*Queue
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
	if l.Base64 {
		g.text = append(g.text, l)
	} else {
		g.binary = append(g.binary, l)
	}
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
	g.binary = without(g.binary, l)
	g.text = without(g.text, l)
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
	if nl.Base64 {
		g.text = append(g.text, nl)
	} else {
		g.binary = append(g.binary, nl)
	}
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

// SetServed marks whether a translated stream serves lang. Listeners of a
// served language get that stream instead of the source.
func (r *Room) SetServed(lang string, served bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if served {
		r.served[lang] = true
	} else {
		delete(r.served, lang)
	}
}

// Served reports whether lang has a translated stream.
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
func (r *Room) RaiseNextSeq(next uint32) {
	r.mu.Lock()
	r.raiseLocked(next)
	r.mu.Unlock()
}

// raiseLocked moves the source stream's next number up to next. Numbers
// compare as integers except across the 2^32 wrap.
func (r *Room) raiseLocked(next uint32) {
	if cur := r.seq[""]; next > cur || cur-next > 1<<31 {
		r.seq[""] = next
	}
}

// Publish stamps a source chunk, frames it once per encoding and language
// that needs it, and queues it to every listener not served by a translated
// stream. It returns the chunk's sequence number and how many listeners it
// was queued to. sourceLang listeners always get it. The chunk must not be
// changed afterwards.
func (r *Room) Publish(sourceLang string, chunk []byte, ingest time.Time) (seq uint32, queued int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq = r.seq[""]
	return seq, r.publishLocked(sourceLang, seq, chunk, ingest)
}

// Deliver fans out a source chunk numbered elsewhere: by the cluster's
// shared counter, on whichever node the speaker is.
func (r *Room) Deliver(sourceLang string, seq uint32, ingest time.Time, chunk []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publishLocked(sourceLang, seq, chunk, ingest)
}

func (r *Room) publishLocked(sourceLang string, seq uint32, chunk []byte, ingest time.Time) (queued int) {
	r.raiseLocked(seq + 1)
	var bin *Message
	dropped := 0
	for lang, g := range r.byLang {
		if lang != sourceLang && r.served[lang] {
			continue
		}
		if len(g.binary) > 0 {
			if bin == nil {
				bin = newAudioFrame(protocol.KindSource, 0, seq, ingest, chunk)
			}
			queued += pushAll(g.binary, bin, &dropped)
		}
		if len(g.text) > 0 {
			txt := newAudioText(r.opts.SessionID, r.opts.Format, lang, protocol.KindSource, seq, ingest, chunk)
			queued += pushAll(g.text, txt, &dropped)
		}
	}
	if len(r.taps) > 0 {
		tap := newAudioFrame(protocol.KindSource, r.opts.StreamID, seq, ingest, chunk)
		for _, q := range r.taps {
			_, d := q.Push(tap)
			dropped += d
		}
	}
	if dropped > 0 && r.opts.OnDrop != nil {
		r.opts.OnDrop(dropped)
	}
	return queued
}

// SetTaps replaces the queues that receive every source chunk.
func (r *Room) SetTaps(qs []*Queue) {
	r.mu.Lock()
	r.taps = qs
	r.mu.Unlock()
}

// PublishTranslated queues a translated chunk to the listeners of lang, with
// that stream's own sequence numbers.
func (r *Room) PublishTranslated(lang string, chunk []byte, ingest time.Time) (seq uint32, queued int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq = r.seq[lang]
	r.seq[lang] = seq + 1
	g := r.byLang[lang]
	if g == nil {
		return seq, 0
	}
	dropped := 0
	if len(g.binary) > 0 {
		queued += pushAll(g.binary, newAudioFrame(protocol.KindTranslated, 0, seq, ingest, chunk), &dropped)
	}
	if len(g.text) > 0 {
		txt := newAudioText(r.opts.SessionID, r.opts.Format, lang, protocol.KindTranslated, seq, ingest, chunk)
		queued += pushAll(g.text, txt, &dropped)
	}
	if dropped > 0 && r.opts.OnDrop != nil {
		r.opts.OnDrop(dropped)
	}
	return seq, queued
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
	for _, l := range g.binary {
		l.Queue.Push(m)
	}
	for _, l := range g.text {
		l.Queue.Push(m)
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
