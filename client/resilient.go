package client

import (
	"context"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/ctxtime"
)

// resilient is the machinery a Speaker and a Listener share to keep one
// logical connection to a session alive across many: a goroutine per
// connection feeding one inbox, heartbeats, and the dialing of
// replacements, either a refresh (a few quick tries while the current
// connection still works) or a reconnect (with backoff until it succeeds or
// a refusal says it never will). Each owner runs one goroutine that selects
// on inbox and dialed and decides what a message or a dial result means for
// it; dialing belongs to that goroutine.
type resilient struct {
	ctx     context.Context // lifetime of the background goroutines
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	backoff *Backoff
	logf    func(format string, args ...any)

	inbox  chan connMsg
	dialed chan dialResult
	// dialing is set while a refresh or reconnect is in flight; the owner's
	// goroutine reads and writes it, and clears it on a dial result.
	dialing bool
}

// connMsg is one frame (or the end) of one connection.
type connMsg struct {
	c   *Conn
	ev  Event
	err error
}

// dialResult is the outcome of a refresh or a reconnect.
type dialResult struct {
	refresh bool
	c       *Conn
	ev      Event
	err     error
}

// dialFunc opens a connection and returns it with the server's answer.
type dialFunc func(ctx context.Context) (*Conn, Event, error)

// newResilient starts the machinery; its goroutines outlive ctx's
// cancellation (callers pass the context of their first connection) and end
// with stop. backoff is copied: callers may share one.
func newResilient(ctx context.Context, backoff *Backoff, logf func(string, ...any)) *resilient {
	r := &resilient{
		backoff: &Backoff{},
		logf:    logf,
		inbox:   make(chan connMsg),
		dialed:  make(chan dialResult),
	}
	if backoff != nil {
		b := *backoff
		r.backoff = &b
	}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return r
}

// stop ends every goroutine and waits for them.
func (r *resilient) stop() {
	r.cancel()
	r.wg.Wait()
}

// read feeds c's frames to inbox until c ends.
func (r *resilient) read(c *Conn) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			ev, err := c.Next(r.ctx)
			if r.ctx.Err() != nil {
				return
			}
			select {
			case r.inbox <- connMsg{c, ev, err}:
			case <-r.ctx.Done():
				return
			}
			if err != nil && !isFrameError(err) {
				return
			}
		}
	}()
}

// heartbeat sends one heartbeat on c without holding up the caller.
func (r *resilient) heartbeat(c *Conn) {
	if c == nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sendHeartbeat(r.ctx, c)
	}()
}

// refresh opens a replacement connection, retrying a few times (the server
// asks well before the connection's hard maximum), unless a dial is
// already in flight.
func (r *resilient) refresh(open dialFunc) {
	r.dial(func() {
		b := Backoff{Initial: r.backoff.Initial, Max: r.backoff.Max}
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			if attempt > 0 && !ctxtime.Sleep(r.ctx, b.Next()) {
				return
			}
			var c *Conn
			var ev Event
			if c, ev, err = open(r.ctx); err == nil {
				r.report(dialResult{refresh: true, c: c, ev: ev})
				return
			}
			if !Retryable(err) {
				break
			}
		}
		r.report(dialResult{refresh: true, err: err})
	})
}

// reconnect opens a new connection after cause ended the last one, with
// backoff, until it succeeds or a refusal says it never will; unless a dial
// is already in flight.
func (r *resilient) reconnect(cause error, open dialFunc) {
	r.dial(func() {
		for attempt := 1; ; attempt++ {
			d := r.backoff.Next()
			r.logf("connection lost (%v); reconnecting in %v (attempt %d)", cause, d.Round(time.Millisecond), attempt)
			if !ctxtime.Sleep(r.ctx, d) {
				return
			}
			c, ev, err := open(r.ctx)
			if err == nil {
				r.backoff.Reset()
				r.report(dialResult{c: c, ev: ev})
				return
			}
			if !Retryable(err) {
				r.report(dialResult{err: err})
				return
			}
			cause = err
		}
	})
}

// dial runs f on a goroutine of its own as the one dial in flight, unless
// one already is.
func (r *resilient) dial(f func()) {
	if r.dialing {
		return
	}
	r.dialing = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// report hands a dial result to the owner, or closes its connection when
// the owner has stopped.
func (r *resilient) report(res dialResult) {
	select {
	case r.dialed <- res:
	case <-r.ctx.Done():
		if res.c != nil {
			res.c.Close()
		}
	}
}
