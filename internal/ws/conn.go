package ws

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// conn is one WebSocket connection. Two goroutines serve it: the reader
// (running run) and, while there is something to send, its queue's writer,
// which writes through the conn (hub.Link).
type conn struct {
	srv   *Server
	id    string
	nc    net.Conn
	br    *bufio.Reader
	q     *hub.Queue
	clock clockwork.Clock
	ip    netip.Addr
	// hash is the connection's correlation id in logs: a hash of its id,
	// never the id itself.
	hash string
	ctx  context.Context
	stop context.CancelFunc

	lastActive atomic.Int64 // unix nanoseconds, by the injected clock

	hbLimit    *rate.Limiter
	ctrlLimit  *rate.Limiter
	audioLimit *rate.Limiter

	mu          sync.Mutex
	role        string // "" until bound
	identity    *auth.Identity
	speaker     *sessions.Speaker
	listener    *sessions.Listener
	processor   *sessions.Processor
	born        time.Time // start of the connection's age; reset by refresh
	timers      []stopper
	ageTimers   []clockwork.Timer
	lastRateErr time.Time
	b64         bool // the listener receives base64 JSON audio

	closedOnce sync.Once

	// The hub.Link side, used only by the queue's writer.
	plainTCP bool
	deadline time.Time   // the write deadline last set on the socket
	wb       net.Buffers // WriteTo consumes the slice it is given: this one, not the queue's
}

func newConn(s *Server, nc net.Conn, br *bufio.Reader, r *http.Request) *conn {
	clock := s.o.Clock
	now := clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:   s,
		id:    newConnID(),
		nc:    nc,
		br:    br,
		clock: clock,
		ip:    s.o.ClientIP.Of(r),
		ctx:   ctx,
		stop:  cancel,
		born:  now,
	}
	_, c.plainTCP = nc.(*net.TCPConn)
	sum := sha256.Sum256([]byte(c.id))
	c.hash = hex.EncodeToString(sum[:6])
	qo := s.cfg.Queue
	qo.WriteTimeout = s.cfg.WriteTimeout
	qo.Coalesce = s.cfg.WriteCoalesce
	qo.OnSlow = c.onSlow
	qo.OnWrite = s.o.Observer.FramesWritten
	c.q = hub.NewQueue(qo)
	c.q.Attach(c)
	c.lastActive.Store(now.UnixNano())
	cfg := s.cfg
	c.hbLimit = newLimiter(cfg.HeartbeatsPerMinute/60, cfg.HeartbeatBurst)
	c.ctrlLimit = newLimiter(cfg.ControlPerSecond, int(cfg.ControlPerSecond))
	c.audioLimit = newLimiter(float64(cfg.AudioMaxPerSecond), cfg.AudioMaxPerSecond)
	return c
}

func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	if burst < 1 {
		burst = 1
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// logger returns a logger carrying the connection's correlation ids. It is
// built per log line, which is rare, rather than kept per connection, which
// would cost every idle listener a handler's worth of memory.
func (c *conn) logger() *slog.Logger {
	args := []any{"conn", c.hash}
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	if role != "" {
		args = append(args, "role", role)
	}
	if sid := c.sessionID(); sid != "" {
		args = append(args, "sessionId", sid)
	}
	return c.srv.log.With(args...)
}

func (c *conn) base64() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b64
}

func (c *conn) targetLanguage() string {
	c.mu.Lock()
	li := c.listener
	c.mu.Unlock()
	if li == nil {
		return ""
	}
	return li.Language()
}

// ID implements sessions.Conn.
func (c *conn) ID() string { return c.id }

// Queue implements sessions.Conn.
func (c *conn) Queue() *hub.Queue { return c.q }

// Close implements sessions.Conn: the writer sends what is queued, then the
// close frame.
func (c *conn) Close(code int, reason string) { c.closeServer(code, reason) }

func (c *conn) closeServer(code int, reason string) { c.q.Close(code, reason) }

// onSlow runs when the queue gives up on a connection that stays behind
// (docs/protocol.md, "Slow listeners"): its audio is already dropped; the
// close frame follows what control messages wait.
func (c *conn) onSlow(waited time.Duration) {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	c.srv.o.Observer.SlowConsumer(role)
	c.logger().Info("listener too slow", "waitedMs", waited.Milliseconds(), "dropped", c.q.Dropped())
	c.closeServer(4008, "slowConsumer")
}

// WriteFrames implements hub.Link: one writev(2) on plain TCP, one buffered
// flush on TLS. The deadline is set only when it moved.
func (c *conn) WriteFrames(frames [][]byte, deadline time.Time) error {
	if !deadline.Equal(c.deadline) {
		c.deadline = deadline
		if err := c.nc.SetWriteDeadline(deadline); err != nil {
			return err
		}
	}
	if c.plainTCP {
		if len(frames) == 1 {
			_, err := c.nc.Write(frames[0])
			return err
		}
		c.wb = frames
		_, err := c.wb.WriteTo(c.nc)
		return err
	}
	bw := tlsWriters.Get().(*bufio.Writer)
	defer tlsWriters.Put(bw)
	bw.Reset(c.nc)
	defer bw.Reset(nil)
	for _, b := range frames {
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// tlsWriters batch a TLS connection's frames into few records. They are
// shared, not kept per connection: an idle listener holds no buffer.
var tlsWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16*1024) }}

// WriterDone implements hub.Link.
func (c *conn) WriterDone(err error) {
	if err != nil {
		// The reader notices the closed socket and tears down.
		_ = c.nc.Close()
		return
	}
	// The close frame is out: wait briefly for the client's reply, then the
	// reader gives up and tears down.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.CloseWait))
}

// send queues one control message.
func (c *conn) send(m protocol.Message) {
	c.q.Push(hub.NewControl(protocol.Marshal(m)))
}

// sendError queues an error message. It never closes the connection.
func (c *conn) sendError(err error, sessionID string) {
	e := pentecost.AsError(err)
	if e == nil {
		e = pentecost.Internal(err)
		c.logger().Error("internal error", "correlationId", e.CorrelationID(), "err", err)
	} else if e.Err != nil {
		c.logger().Warn("request failed", "code", e.Code, "err", e.Err)
	}
	c.srv.o.Observer.ErrorSent(e.Code)
	c.send(protocol.ErrorFrom(e, sessionID, c.clock.Now()))
}

// refuse sends the error of a failed connect and closes with 4000+status.
func (c *conn) refuse(err error) {
	e := pentecost.AsError(err)
	if e == nil {
		c.sendError(err, "")
		c.closeServer(4500, pentecost.ErrInternal)
		return
	}
	var sid string
	if v, ok := e.Details["sessionId"].(string); ok {
		sid = v
	}
	c.sendError(e, sid)
	c.closeServer(4000+e.Status(), e.Code)
}

// rateLimited sends RATE_LIMIT_EXCEEDED, at most once a second per
// connection, so a flood does not turn into a flood of errors.
func (c *conn) rateLimited(kind string, retry time.Duration) {
	c.srv.o.Observer.RateLimited(kind)
	now := c.clock.Now()
	c.mu.Lock()
	if now.Sub(c.lastRateErr) < time.Second {
		c.mu.Unlock()
		return
	}
	c.lastRateErr = now
	c.mu.Unlock()
	c.sendError(sessions.RateLimited("too many "+kind+" messages", retry), c.sessionID())
}

func (c *conn) sessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.speaker != nil:
		return c.speaker.SessionID()
	case c.listener != nil:
		return c.listener.SessionID()
	}
	return ""
}

// open runs the checks and the connect flow of a new connection, and says
// whether it holds a place in its IP's count of open connections (to be
// released when the connection ends). A refusal is queued here; the read
// loop then sees the close through.
func (c *conn) open(r *http.Request) (holdsIP bool) {
	c.startTimers()
	switch {
	case !c.srv.o.Origins.Check(r, c.srv.o.ClientIP.Scheme(r)):
		// Debug: refusals cost an attacker nothing, so they must not fill
		// the log; an operator chasing one turns the level down.
		c.logger().Debug("origin refused", "origin", pentecost.Truncate(r.Header.Get("Origin"), 128), "scheme", c.srv.o.ClientIP.Scheme(r))
		c.refuse(pentecost.Errorf(pentecost.ErrForbidden, "origin is not allowed"))
	case !c.srv.acquireIP(c.ip):
		c.srv.o.Observer.RateLimited("connections_per_ip")
		c.refuse(sessions.RateLimited("too many open connections from your network", 5*time.Second))
	default:
		holdsIP = true
		if err := c.connect(r); err != nil {
			c.refuse(err)
		}
	}
	return holdsIP
}

// teardown runs once when the reader has finished: the session is told the
// connection is gone, then the socket is closed once the writer is done.
func (c *conn) teardown() {
	c.closedOnce.Do(func() {
		c.mu.Lock()
		for _, t := range c.timers {
			t.Stop()
		}
		for _, t := range c.ageTimers {
			t.Stop()
		}
		sp, li, pr, role := c.speaker, c.listener, c.processor, c.role
		c.mu.Unlock()
		if sp != nil {
			sp.Leave()
		}
		if pr != nil {
			pr.Leave()
		}
		if li != nil {
			li.Leave()
		}
		c.closeServer(1000, "")
		select {
		case <-c.q.Done():
		case <-time.After(c.srv.cfg.CloseWait + c.srv.cfg.WriteTimeout):
		}
		c.q.Stop()
		c.stop()
		_ = c.nc.Close()
		if role != "" {
			c.srv.o.Observer.ConnectionClosed(role)
		}
	})
}
