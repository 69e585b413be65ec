package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// ListenerOptions configure StartListener.
type ListenerOptions struct {
	Base   string // server base URL, as for WSURL
	Params ListenParams
	// Heartbeat is the interval of heartbeat messages: 0 means 30 s, a
	// negative value none.
	Heartbeat time.Duration
	// Backoff spaces reconnection attempts; nil means the defaults.
	Backoff *Backoff
	// HandoverTimeout bounds the overlap of a refresh: 0 means 3 s, just
	// over the 2 s after which the server closes the old connection.
	HandoverTimeout time.Duration
	// Logf, when set, is told of refreshes and reconnects.
	Logf func(format string, args ...any)
}

// Listener is a listener's hold on a session across connections: it
// answers connectionRefreshRequired with a replacement connection naming the
// old one, and reconnects with backoff after an unexpected drop.
//
// During a refresh both connections receive the stream. Next keeps taking
// frames from the old connection and holds the new one's back until the old
// one has delivered everything before the new one's first frame (or ends, or
// HandoverTimeout passes); then it releases the held frames and continues on
// the new connection. So audio comes out in sequence order with nothing
// skipped that either connection received, but the frames both received come
// out twice: run them through a GapTracker, which drops the duplicates.
// Control messages are taken from one connection at a time, so they are not
// repeated.
type Listener struct {
	opts ListenerOptions
	rc   *resilient

	out chan inbound
	err error // why out was closed; written before

	mu     sync.Mutex
	active *Conn  // for Send
	lang   string // current target language, for refreshes and reconnects
}

// StartListener joins the session and returns the Listener and the
// sessionJoined message. The Listener runs until the session ends, a
// refusal makes it stop, or Close.
func StartListener(ctx context.Context, opts ListenerOptions) (*Listener, Event, error) {
	c, ev, err := JoinListener(ctx, opts.Base, opts.Params)
	if err != nil {
		return nil, ev, err
	}
	l := &Listener{
		opts:   opts,
		rc:     newResilient(ctx, opts.Backoff, opts.Logf),
		out:    make(chan inbound, 64),
		active: c,
		lang:   opts.Params.Language,
	}
	l.rc.wg.Add(1)
	go l.run(c, ev.String("connectionId"))
	return l, ev, nil
}

// Next returns the session's next message or audio frame (binary, or
// audioData for base64 listeners; AudioFromJSON reads both). After
// sessionEnded it returns ErrSessionEnded; after a refusal to reconnect,
// that error; after Close, ErrClosed. A *FrameError is not fatal.
func (l *Listener) Next(ctx context.Context) (Event, error) {
	select {
	case in, ok := <-l.out:
		if !ok {
			return Event{}, l.err
		}
		return in.ev, in.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Send sends a JSON message (changeLanguage, pausePlayback ...) on the
// current connection.
func (l *Listener) Send(ctx context.Context, v any) error {
	l.mu.Lock()
	c := l.active
	l.mu.Unlock()
	if c == nil {
		return errors.New("listener is reconnecting")
	}
	return c.Send(ctx, v)
}

// Close leaves the session and stops the Listener.
func (l *Listener) Close() error {
	l.rc.stop()
	return nil
}

// lconn is a connection with its server-side id, and, for the replacement
// connection of a refresh, the frames held back.
type lconn struct {
	c    *Conn
	id   string
	held []Event
}

// maxHeld bounds the frames held during a handover: 10 s of 20 ms chunks.
const maxHeld = 500

func (l *Listener) run(first *Conn, firstID string) {
	defer l.rc.wg.Done()
	var (
		active   = &lconn{c: first, id: firstID}
		next     *lconn // the replacement during a refresh
		retired  []*Conn
		fatal    error
		handover <-chan time.Time
		// lastAudio is the last frame passed on from the active connection.
		lastAudio *Event
	)
	defer func() {
		l.mu.Lock()
		l.active = nil
		l.mu.Unlock()
		if fatal == nil {
			fatal = ErrClosed
		}
		l.err = fatal
		close(l.out)
		for _, lc := range []*lconn{active, next} {
			if lc != nil {
				retired = append(retired, lc.c)
			}
		}
		closeAll(retired)
	}()

	start := l.rc.read
	start(first)
	var handoverTimer *time.Timer

	hb, stop := heartbeatTicker(l.opts.Heartbeat)
	defer stop()

	emit := func(in inbound) bool {
		select {
		case l.out <- in:
			return true
		case <-l.rc.ctx.Done():
			return false
		}
	}
	setActive := func(lc *lconn) {
		if active != nil {
			retired = append(retired, active.c)
			go active.c.Close() // closeAll waits for it at the end
		}
		active = lc
		l.mu.Lock()
		l.active = nil
		if lc != nil {
			l.active = lc.c
		}
		l.mu.Unlock()
	}
	// completeHandover releases the held frames and moves to next.
	completeHandover := func() bool {
		if handoverTimer != nil {
			handoverTimer.Stop()
			handover, handoverTimer = nil, nil
		}
		lc := next
		next = nil
		for _, ev := range lc.held {
			if !emit(inbound{ev: ev}) {
				return false
			}
		}
		lc.held = nil
		setActive(lc)
		l.rc.logf("connection refreshed")
		return true
	}

	for {
		select {
		case <-l.rc.ctx.Done():
			return

		case <-hb:
			if active != nil {
				l.rc.heartbeat(active.c)
			}

		case <-handover:
			if !completeHandover() {
				return
			}

		case m := <-l.rc.inbox:
			fromActive := active != nil && m.c == active.c
			fromNext := next != nil && m.c == next.c
			if !fromActive && !fromNext {
				continue // a retired connection draining
			}
			if m.err != nil {
				if isFrameError(m.err) {
					if fromActive && !emit(inbound{ev: m.ev, err: m.err}) {
						return
					}
					continue
				}
				if fromNext {
					l.rc.logf("replacement connection lost during refresh: %v", m.err)
					next.c.CloseNow()
					next = nil
					continue
				}
				if next != nil {
					// The old connection ended mid-handover: the new one
					// carries on.
					if !completeHandover() {
						return
					}
					continue
				}
				setActive(nil)
				if err := m.c.explain(m.err); final(err) {
					fatal = fmt.Errorf("listener connection: %w", err)
					return
				}
				l.rc.reconnect(m.err, l.join)
				continue
			}

			ev := m.ev
			if ev.Type == protocol.TypeSessionEnded {
				emit(inbound{ev: ev})
				fatal = ErrSessionEnded
				return
			}
			if fromNext {
				if ev.IsAudio() {
					next.held = append(next.held, ev)
					done := lastAudio != nil && caughtUp(*lastAudio, next.held[0])
					if (done || len(next.held) >= maxHeld) && !completeHandover() {
						return
					}
				}
				continue // control messages come from the old one meanwhile
			}
			switch ev.Type {
			case protocol.TypeConnectionRefreshRequired:
				if !l.rc.dialing && next == nil {
					l.rc.logf("server asked for a new connection (%s); refreshing", ev.String("reason"))
					l.rc.refresh(l.refresher(active.id))
				}
			case protocol.TypeLanguageChanged:
				l.mu.Lock()
				l.lang = ev.String("targetLanguage")
				l.mu.Unlock()
			case protocol.TypeSessionJoined:
				if id := ev.String("connectionId"); id != "" {
					active.id = id
				}
			}
			if !emit(inbound{ev: ev}) {
				return
			}
			if ev.IsAudio() {
				lastAudio = &ev
			}
			if next != nil && ev.IsAudio() && len(next.held) > 0 && caughtUp(ev, next.held[0]) {
				if !completeHandover() {
					return
				}
			}

		case r := <-l.rc.dialed:
			l.rc.dialing = false
			switch {
			case r.err != nil && r.refresh && active == nil:
				l.rc.reconnect(r.err, l.join)
			case r.err != nil && r.refresh:
				l.rc.logf("refresh failed (%v); staying on the current connection", r.err)
			case r.err != nil:
				fatal = fmt.Errorf("reconnect: %w", r.err)
				return
			case r.refresh && active != nil:
				next = &lconn{c: r.c, id: r.ev.String("connectionId")}
				start(r.c)
				handoverTimer = time.NewTimer(durationOr(l.opts.HandoverTimeout, 3*time.Second))
				handover = handoverTimer.C
			default:
				// A reconnect, or a refresh that finished after the old
				// connection was lost: either way the only connection.
				setActive(&lconn{c: r.c, id: r.ev.String("connectionId")})
				start(r.c)
				if r.refresh {
					l.rc.logf("connection refreshed")
				} else {
					l.rc.logf("reconnected")
					if !emit(inbound{ev: r.ev}) {
						return
					}
				}
			}
		}
	}
}

// caughtUp reports whether the old connection's frame a reaches the frame
// just before b, the first held from the new connection.
func caughtUp(a, b Event) bool {
	fa, errA := a.AudioFromJSON()
	fb, errB := b.AudioFromJSON()
	if errA != nil || errB != nil {
		return true // cannot tell; don't hold the new connection back
	}
	return int32(fa.Header.Sequence-fb.Header.Sequence+1) >= 0
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (l *Listener) language() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lang
}

// join opens a listener connection for a reconnect, in the current
// language and the codec asked for.
func (l *Listener) join(ctx context.Context) (*Conn, Event, error) {
	p := l.opts.Params
	p.Language = l.language()
	return JoinListener(ctx, l.opts.Base, p)
}

// refresher opens the replacement of the connection previousID, keeping
// its language, encoding and codec.
func (l *Listener) refresher(previousID string) dialFunc {
	return func(ctx context.Context) (*Conn, Event, error) {
		return Refresh(ctx, l.opts.Base, RefreshParams{
			SessionID:            l.opts.Params.SessionID,
			Role:                 protocol.RoleListener,
			TargetLanguage:       l.language(),
			AudioEncoding:        l.opts.Params.Encoding,
			Codec:                l.opts.Params.Codec,
			PreviousConnectionID: previousID,
			Dial:                 l.opts.Params.Dial,
		})
	}
}
