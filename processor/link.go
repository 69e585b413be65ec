package processor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/protocol"
)

// link is one attachProcessor connection. Its maps are guarded by the
// engine's lock.
type link struct {
	e       *Engine
	c       *client.Conn
	id      string        // the server's connectionId
	refresh chan struct{} // signalled on connectionRefreshRequired
	done    chan struct{} // closed when the connection has ended
	err     error         // why it ended; written before done is closed
	closing atomic.Bool   // this side is closing it
	silent  atomic.Bool   // this side dropped it: the server went silent
	// lastRecv is when the last frame arrived, Unix nanoseconds.
	lastRecv *atomic.Int64
	// transcript: attached with transcript=true and the server said yes.
	transcript bool

	sessions map[string]sessionInfo // session ID → what sessionStarted said
	streams  map[uint16]string      // stream ID → session ID
	assigned map[string][]string    // session ID → languages assigned to this connection
}

type sessionInfo struct {
	stream         uint16
	source, format string
	packetMs       int
}

// read handles the connection's frames until it ends.
func (l *link) read() {
	defer close(l.done)
	for {
		ev, err := l.c.Next(context.Background())
		l.lastRecv.Store(time.Now().UnixNano())
		if err != nil {
			var fe *client.FrameError
			if errors.As(err, &fe) {
				l.e.logf("connection %s: %v", l.id, err)
				continue
			}
			switch {
			case l.silent.Load():
				err = errSilent
			case l.closing.Load():
				err = client.ErrClosed
			}
			l.err = err
			l.e.linkGone(l)
			if l.closing.Load() {
				l.e.logf("connection %s closed", l.id)
			}
			l.e.event(Event{Kind: EventDetached, ConnectionID: l.id, Err: err})
			return
		}
		if ev.Audio != nil {
			l.e.source(l, ev.Audio)
			continue
		}
		l.handle(ev)
	}
}

// errSilent ends a connection the server stopped answering.
var errSilent = errors.New("no frame from the server in too long: connection taken for lost")

func newAtomicTime() *atomic.Int64 {
	var a atomic.Int64
	a.Store(time.Now().UnixNano())
	return &a
}

// heartbeat sends a heartbeat every interval, and drops the connection when
// nothing has come from the server for deadAfter: a silently lost network
// path (no FIN, no RST) would otherwise leave the engine waiting forever on
// a connection the server has already given up on.
func (l *link) heartbeat(every, deadAfter time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			if quiet := time.Since(time.Unix(0, l.lastRecv.Load())); quiet > deadAfter {
				l.e.logf("connection %s: nothing from the server for %v; dropping it", l.id, quiet.Round(time.Millisecond))
				l.silent.Store(true)
				l.c.CloseNow()
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = l.c.Send(ctx, map[string]any{"action": protocol.ActHeartbeat, "timestamp": time.Now().UnixMilli()})
			cancel()
		}
	}
}

func (l *link) handle(ev client.Event) {
	e := l.e
	switch ev.Type {
	case protocol.TypeSessionStarted:
		var m protocol.SessionStarted
		if err := ev.Decode(&m); err != nil || m.SessionID == "" {
			e.logf("connection %s: malformed sessionStarted", l.id)
			return
		}
		e.sessionStarted(l, m)
	case protocol.TypeLanguagesChanged:
		var m protocol.LanguagesChanged
		if err := ev.Decode(&m); err != nil || m.SessionID == "" {
			e.logf("connection %s: malformed languagesChanged", l.id)
			return
		}
		e.languagesChanged(l, m)
	case protocol.TypeSessionEnded:
		e.sessionEnded(l, ev.String("sessionId"), ev.String("reason"))
	case protocol.TypeConnectionRefreshRequired:
		e.logf("connection %s: the server asks for a new connection (%s)", l.id, ev.String("reason"))
		e.event(Event{Kind: EventRefreshRequired, ConnectionID: l.id})
		select {
		case l.refresh <- struct{}{}:
		default:
		}
	case protocol.TypeConnectionWarning:
		e.logf("connection %s: server warning: %s", l.id, ev.String("message"))
	case protocol.TypeConnectionTimeout:
		e.logf("connection %s: closed by the server after %d s without traffic", l.id, ev.Int("idleSeconds"))
	case protocol.TypeError:
		e.serverError(l, ev)
	}
}

func (e *Engine) sessionStarted(l *link, m protocol.SessionStarted) {
	e.mu.Lock()
	defer e.mu.Unlock()
	info := sessionInfo{stream: m.StreamID, source: strings.ToLower(m.SourceLanguage), format: m.AudioFormat, packetMs: m.PacketMs}
	if info.format == "" {
		info.format = "pcm16"
	}
	known := e.knownLocked(m.SessionID)
	if prev, ok := l.sessions[m.SessionID]; ok && prev.stream != info.stream {
		delete(l.streams, prev.stream)
	}
	l.sessions[m.SessionID] = info
	l.streams[info.stream] = m.SessionID
	if !known {
		e.logf("session %s started: source %s, %s (stream %d)", m.SessionID, info.source, info.format, info.stream)
		e.event(Event{Kind: EventSessionStarted, ConnectionID: l.id, SessionID: m.SessionID})
	}
	// A session whose source language or format changed needs new workers.
	var stale []*worker
	for k, w := range e.workers {
		if k.session == m.SessionID && (w.stream.SourceLanguage != info.source || w.stream.Format != info.format) {
			stale = append(stale, w)
		}
	}
	for _, w := range stale {
		e.logf("session %s: now %s, %s: restarting the %s worker", m.SessionID, info.source, info.format, w.k.lang)
		e.stopWorkerLocked(w)
		e.reconcileLocked(w.k, false)
	}
}

func (e *Engine) languagesChanged(l *link, m protocol.LanguagesChanged) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := l.sessions[m.SessionID]; !ok && m.StreamID != 0 {
		e.logf("connection %s: languagesChanged for session %s before its sessionStarted", l.id, m.SessionID)
	}
	old := l.assigned[m.SessionID]
	langs := make([]string, 0, len(m.Languages))
	for _, lang := range m.Languages {
		langs = append(langs, strings.ToLower(lang))
	}
	slices.Sort(langs)
	if len(langs) == 0 {
		delete(l.assigned, m.SessionID)
	} else {
		l.assigned[m.SessionID] = langs
	}
	label := strings.Join(langs, ", ")
	if label == "" {
		label = "none"
	}
	e.logf("session %s: languages assigned to connection %s: %s", m.SessionID, l.id, label)
	e.event(Event{Kind: EventLanguages, ConnectionID: l.id, SessionID: m.SessionID, Languages: slices.Clone(langs)})
	for _, lang := range old {
		if !slices.Contains(langs, lang) {
			e.reconcileLocked(key{m.SessionID, lang}, false)
		}
	}
	for _, lang := range langs {
		e.reconcileLocked(key{m.SessionID, lang}, false)
	}
}

func (e *Engine) sessionEnded(l *link, sid, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(l.assigned, sid)
	info, had := l.sessions[sid]
	if had {
		delete(l.streams, info.stream)
		delete(l.sessions, sid)
	}
	for k, w := range e.workers {
		if k.session == sid {
			e.stopWorkerLocked(w)
		}
	}
	if had && !e.knownLocked(sid) {
		e.logf("session %s ended (%s)", sid, reason)
		e.event(Event{Kind: EventSessionEnded, ConnectionID: l.id, SessionID: sid})
	}
}

// source hands a source frame to the workers of the languages this
// connection serves in its session.
func (e *Engine) source(l *link, f *client.AudioFrame) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sid, ok := l.streams[f.Header.StreamID]
	if !ok {
		e.nUnknown.Add(1)
		return
	}
	c := Chunk{Data: f.Chunk, Sequence: f.Header.Sequence, Ingest: f.Header.Ingest}
	for _, lang := range l.assigned[sid] {
		if w := e.workers[key{sid, lang}]; w != nil {
			e.nSource.Add(1)
			if w.q.push(c) {
				e.nDropped.Add(1)
				e.event(Event{Kind: EventDropped, SessionID: sid, Language: lang})
			}
		}
	}
}
