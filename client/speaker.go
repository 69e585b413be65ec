package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// SpeakerOptions configure StartSpeaker.
type SpeakerOptions struct {
	Base   string // server base URL, as for WSURL
	Token  string
	Params SpeakParams // SessionID empty creates a session
	// Heartbeat is the interval of heartbeat messages: 0 means 30 s, a
	// negative value none.
	Heartbeat time.Duration
	// Backoff spaces reconnection attempts; nil means the defaults.
	Backoff *Backoff
	// Logf, when set, is told of refreshes and reconnects. It never sees
	// a token.
	Logf func(format string, args ...any)
}

// Speaker is a speaker's hold on a session across connections. It answers
// connectionRefreshRequired by opening the replacement connection, moves
// sending to it once connectionRefreshComplete arrives, then closes the old
// one; since all chunks go through SendAudio one at a time, each goes out on
// exactly one connection and none is lost or repeated. After an unexpected
// drop it reattaches with backoff, and SendAudio waits meanwhile.
type Speaker struct {
	opts      SpeakerOptions
	sessionID string
	rc        *resilient

	mu       sync.Mutex
	cur      *Conn         // where sends go; nil while reconnecting
	changed  chan struct{} // closed and replaced when cur changes
	finished bool
	err      error  // why the session is over for us
	ended    *Event // the sessionEnded message, if that is why

	done   chan struct{} // closed when finished
	events chan Event
}

// StartSpeaker connects (creating or attaching) and returns the Speaker
// and the server's answer, sessionCreated or sessionJoined. The Speaker
// runs until the session ends, a refusal makes it stop, or Close.
func StartSpeaker(ctx context.Context, opts SpeakerOptions) (*Speaker, Event, error) {
	c, ev, err := Speak(ctx, opts.Base, opts.Token, opts.Params)
	if err != nil {
		return nil, ev, err
	}
	s := &Speaker{
		opts:      opts,
		sessionID: ev.String("sessionId"),
		rc:        newResilient(ctx, opts.Backoff, opts.Logf),
		changed:   make(chan struct{}),
		done:      make(chan struct{}),
		events:    make(chan Event, 256),
	}
	if s.sessionID == "" {
		s.sessionID = opts.Params.SessionID
	}
	s.cur = c
	s.rc.wg.Add(1)
	go s.run(c)
	return s, ev, nil
}

// SessionID is the session this Speaker speaks to.
func (s *Speaker) SessionID() string { return s.sessionID }

// Events delivers the server's messages other than audio, in order, and
// is closed when the Speaker stops. It holds 256; messages that find it
// full are dropped so that a caller who does not read never stalls the audio.
func (s *Speaker) Events() <-chan Event { return s.events }

// Done is closed when the session is over for this Speaker; Err says why.
func (s *Speaker) Done() <-chan struct{} { return s.done }

// Err is nil while the Speaker runs, ErrSessionEnded after sessionEnded,
// or what stopped it.
func (s *Speaker) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// SendAudio sends one chunk as a binary frame, waiting while a
// reconnection is under way. A chunk whose write fails is sent again on
// the next connection.
func (s *Speaker) SendAudio(ctx context.Context, chunk []byte) error {
	return s.send(ctx, func(c *Conn) error { return c.SendBinary(ctx, chunk) })
}

// Send sends a JSON message (a control action) like SendAudio.
func (s *Speaker) Send(ctx context.Context, v any) error {
	return s.send(ctx, func(c *Conn) error { return c.Send(ctx, v) })
}

func (s *Speaker) send(ctx context.Context, write func(*Conn) error) error {
	var failed *Conn
	for {
		s.mu.Lock()
		c, changed, finished, err := s.cur, s.changed, s.finished, s.err
		s.mu.Unlock()
		if finished {
			return err
		}
		if c != nil && c != failed {
			err := write(c)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed = c
			s.mu.Lock()
			if s.cur == c {
				// Its reader reports the drop, and the run loop reconnects.
				c.CloseNow()
			}
			s.mu.Unlock()
			continue
		}
		select {
		case <-changed:
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// End sends endSession and waits for sessionEnded, which it returns.
func (s *Speaker) End(ctx context.Context, reason string) (Event, error) {
	msg := map[string]any{"action": protocol.ActEndSession}
	if reason != "" {
		msg["reason"] = reason
	}
	if err := s.Send(ctx, msg); err != nil && !errors.Is(err, ErrSessionEnded) {
		return Event{}, fmt.Errorf("send endSession: %w", err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return Event{}, fmt.Errorf("waiting for sessionEnded: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return *s.ended, nil
	}
	return Event{}, s.err
}

// Close stops the Speaker and closes its connections without ending the
// session: the server starts the speaker's reconnect grace.
func (s *Speaker) Close() error {
	s.rc.stop()
	return nil
}

// setCur switches sends to c (nil while reconnecting).
func (s *Speaker) setCur(c *Conn) {
	s.mu.Lock()
	s.cur = c
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Speaker) finish(err error, ended *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.finished, s.err, s.ended = true, err, ended
	close(s.done)
}

// run owns the connections: it reads them all, and decides on refreshes,
// reconnects and the end.
func (s *Speaker) run(first *Conn) {
	defer s.rc.wg.Done()
	defer close(s.events)
	conns := map[*Conn]bool{}
	var closers sync.WaitGroup
	defer func() {
		for c := range conns {
			closers.Add(1)
			go func() { defer closers.Done(); c.Close() }()
		}
		closers.Wait()
	}()
	retire := func(c *Conn) {
		delete(conns, c)
		closers.Add(1)
		go func() { defer closers.Done(); c.Close() }()
	}
	adopt := func(c *Conn) {
		conns[c] = true
		s.rc.read(c)
	}
	adopt(first)

	hb, stop := heartbeatTicker(s.opts.Heartbeat)
	defer stop()
	replaced := false // the current connection got connectionReplaced

	for {
		select {
		case <-s.rc.ctx.Done():
			s.finish(ErrClosed, nil)
			return
		case <-hb:
			s.mu.Lock()
			c := s.cur
			s.mu.Unlock()
			s.rc.heartbeat(c)
		case m := <-s.rc.inbox:
			s.mu.Lock()
			isCur := m.c == s.cur
			s.mu.Unlock()
			if m.err != nil {
				if isFrameError(m.err) {
					s.rc.logf("ignoring %v", m.err)
					continue
				}
				delete(conns, m.c)
				if !isCur {
					continue // a retired connection closing
				}
				s.setCur(nil)
				if replaced {
					s.finish(ErrReplaced, nil)
					return
				}
				if err := m.c.explain(m.err); final(err) {
					s.finish(fmt.Errorf("speaker connection: %w", err), nil)
					return
				}
				s.rc.reconnect(m.err, s.attach)
				continue
			}
			switch m.ev.Type {
			case protocol.TypeSessionEnded:
				ev := m.ev
				s.deliver(ev)
				s.finish(ErrSessionEnded, &ev)
				return
			case protocol.TypeConnectionReplaced:
				if isCur {
					replaced = true
				}
			case protocol.TypeConnectionRefreshRequired:
				if isCur && !s.rc.dialing {
					s.rc.logf("server asked for a new connection (%s); refreshing", m.ev.String("reason"))
					s.rc.refresh(s.refreshConn)
				}
			}
			if isCur {
				s.deliver(m.ev)
			}
		case r := <-s.rc.dialed:
			s.rc.dialing = false
			if r.err != nil {
				s.mu.Lock()
				lost := s.cur == nil
				s.mu.Unlock()
				switch {
				case r.refresh && lost:
					// The old connection died while refreshing: fall back
					// to reattaching.
					s.rc.reconnect(r.err, s.attach)
				case r.refresh:
					s.rc.logf("refresh failed (%v); staying on the current connection", r.err)
				default:
					s.finish(fmt.Errorf("reconnect: %w", r.err), nil)
					return
				}
				continue
			}
			s.mu.Lock()
			old := s.cur
			s.mu.Unlock()
			adopt(r.c)
			s.setCur(r.c)
			replaced = false
			if old != nil {
				retire(old)
			}
			if r.refresh {
				s.rc.logf("connection refreshed")
			} else {
				s.rc.logf("reconnected")
				s.deliver(r.ev)
			}
		}
	}
}

// deliver passes a message to Events without ever blocking.
func (s *Speaker) deliver(ev Event) {
	select {
	case s.events <- ev:
	default:
		s.rc.logf("events full: dropped %s", ev.Type)
	}
}

// refreshConn opens the replacement connection of a refresh.
func (s *Speaker) refreshConn(ctx context.Context) (*Conn, Event, error) {
	return Refresh(ctx, s.opts.Base, RefreshParams{
		SessionID: s.sessionID,
		Role:      protocol.RoleSpeaker,
		Token:     s.opts.Token,
		Dial:      s.opts.Params.Dial,
	})
}

// attach reattaches to the session after a drop.
func (s *Speaker) attach(ctx context.Context) (*Conn, Event, error) {
	p := s.opts.Params
	p.SessionID = s.sessionID
	return Speak(ctx, s.opts.Base, s.opts.Token, p)
}
