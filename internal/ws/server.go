// Package ws is the WebSocket transport: the upgrade, the connect flows of
// docs/protocol.md, "Connecting to /ws", the frame reader, the connection's
// timers, and the socket each connection's hub.Queue writes to (conn
// implements hub.Link). It turns frames into calls on the session layer and
// is the only package that touches a socket.
//
// It is built on github.com/gobwas/ws, which leaves framing to us: that is
// what lets hub frame a message once for every listener, and a queue's
// writer send everything waiting for a listener in one writev(2).
package ws

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/sessions"
)

// Config holds the transport's limits and timings.
type Config struct {
	HeartbeatTimeout time.Duration // idle close; 0 disables
	PingInterval     time.Duration // server pings; 0 disables
	RefreshAfter     time.Duration // connectionRefreshRequired; 0 disables
	WarningAfter     time.Duration // connectionWarning; 0 disables
	MaxDuration      time.Duration // hard maximum, close 4410; 0 disables
	WriteTimeout     time.Duration // a write that takes longer ends the connection
	// WriteCoalesce delays each write so more queued frames go out in one
	// system call; 0 writes as soon as a frame is queued.
	WriteCoalesce time.Duration
	CloseWait     time.Duration // how long to wait for the client's close reply
	// SendBuffer is the kernel send buffer (SO_SNDBUF) asked for on every
	// accepted socket, so that a stalled client's backlog waits in its
	// queue, where its age is seen, rather than in megabytes of kernel
	// buffer; 0 keeps the kernel's autotuning.
	SendBuffer int

	AudioMaxChunk       int // bytes, inclusive
	AudioMaxPerSecond   int
	JSONMaxBytes        int
	HeartbeatsPerMinute float64
	HeartbeatBurst      int
	ControlPerSecond    float64

	MaxConnections int // global cap; past it upgrades get 503 + Retry-After
	// MaxConnectionsPerIP bounds the open connections of one client address
	// (a NAT of a whole congregation counts as one); 0 = no bound.
	MaxConnectionsPerIP int

	// Queue bounds each connection's queue; WriteTimeout and WriteCoalesce
	// above are copied into it.
	Queue hub.QueueOptions
}

// DefaultConfig returns the defaults of docs/protocol.md, "Limits and rate limits".
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:    90 * time.Second,
		PingInterval:        30 * time.Second,
		RefreshAfter:        100 * time.Minute,
		WarningAfter:        105 * time.Minute,
		MaxDuration:         120 * time.Minute,
		WriteTimeout:        10 * time.Second,
		CloseWait:           2 * time.Second,
		SendBuffer:          32 * 1024,
		AudioMaxChunk:       32 * 1024,
		AudioMaxPerSecond:   100,
		JSONMaxBytes:        128 * 1024,
		HeartbeatsPerMinute: 2,
		HeartbeatBurst:      3,
		ControlPerSecond:    10,
		MaxConnections:      20000,
		MaxConnectionsPerIP: 1000,
		// The slow-listener bound of docs/protocol.md, "Slow listeners":
		// with the 32 KiB send buffer (about 2 s of pcm16 in the kernel)
		// a listener that stops reading is told within about 10 s.
		Queue: hub.QueueOptions{StallTimeout: 8 * time.Second},
	}
}

// IPLimiter limits an action per client IP.
type IPLimiter interface {
	Allow(key string) (bool, time.Duration)
}

// Observer receives transport events for metrics. Nil is fine.
type Observer interface {
	ConnectionOpened(role string)
	ConnectionClosed(role string)
	ErrorSent(code string)
	FramesWritten(messages, audio int)
	RateLimited(kind string)
	// SlowConsumer counts a connection closed with 4008 for staying behind.
	SlowConsumer(role string)
}

// Options are the transport's dependencies.
type Options struct {
	Sessions     *sessions.Service
	Auth         auth.Verifier
	Clock        clockwork.Clock
	Logger       *slog.Logger
	Origins      *OriginPolicy
	ClientIP     *ClientIP
	ConnectLimit IPLimiter // connection attempts per IP
	JoinLimit    IPLimiter // listener joins per IP
	Observer     Observer
}

// Server handles GET /ws.
type Server struct {
	cfg  Config
	o    Options
	log  *slog.Logger
	live atomic.Int64

	mu       sync.Mutex
	conns    map[*conn]struct{}
	perIP    map[netip.Addr]int
	draining bool
}

// New returns a transport server.
func New(cfg Config, o Options) *Server {
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Origins == nil {
		o.Origins = &OriginPolicy{}
	}
	if o.ClientIP == nil {
		o.ClientIP = &ClientIP{}
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.CloseWait <= 0 {
		cfg.CloseWait = 2 * time.Second
	}
	return &Server{cfg: cfg, o: o, log: o.Logger, conns: make(map[*conn]struct{}), perIP: make(map[netip.Addr]int)}
}

// Connections is the number of open WebSocket connections.
func (s *Server) Connections() int { return int(s.live.Load()) }

// ServeHTTP upgrades the request and runs the connection until it ends. Only
// a request that is not an upgrade, or one past the global cap, is refused
// over plain HTTP: browsers cannot read a refused handshake, so every other
// refusal is an error message and a 4xxx close on the upgraded socket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket: send an upgrade request", http.StatusUpgradeRequired)
		return
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if n := s.live.Add(1); draining || (s.cfg.MaxConnections > 0 && n > int64(s.cfg.MaxConnections)) {
		s.live.Add(-1)
		w.Header().Set("Retry-After", "5")
		msg := "server is at its connection limit"
		if draining {
			msg = "server is shutting down; reconnect"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	up := ws.HTTPUpgrader{}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		s.live.Add(-1)
		s.log.Debug("upgrade failed", "err", err)
		return
	}
	// net/http's read and write timeouts were set on the socket before the
	// hijack; the connection's own timers and write deadlines govern now.
	_ = nc.SetDeadline(time.Time{})
	s.boundSendBuffer(nc)
	br := rw.Reader
	if br.Buffered() == 0 {
		// net/http's 4 KiB read buffer is more than a listener, which
		// mostly sends heartbeats, ever needs; audio payloads are read
		// straight into the message buffer past it.
		br = bufio.NewReaderSize(nc, readBufferSize)
	}
	c := newConn(s, nc, br, r)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	// The connection gets a goroutine of its own and the handler returns:
	// net/http's deep handler stack is freed, and an idle connection keeps
	// only a small reader stack and its writer.
	go s.serve(c, r)
}

// serve runs a connection's connect flow, then hands it to a reader of its
// own. The request is not kept past the connect flow, and neither is this
// goroutine: the connect flow (token checks, JSON, the session rules) grows
// its stack to several times what a reader blocked in read(2) needs, and a
// goroutine keeps its stack (thousands of idle listeners would each keep
// 8-16 KB). A fresh goroutine starts small.
func (s *Server) serve(c *conn, r *http.Request) {
	holdsIP := c.open(r)
	go s.read(c, holdsIP)
}

// read runs the connection's read loop until it ends, then tears it down.
func (s *Server) read(c *conn, holdsIP bool) {
	c.readLoop()
	if holdsIP {
		s.releaseIP(c.ip)
	}
	c.teardown()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.live.Add(-1)
}

// boundSendBuffer sets SO_SNDBUF on the TCP socket under nc (under TLS
// too). Failing to is harmless: the kernel's buffer only delays detection.
func (s *Server) boundSendBuffer(nc net.Conn) {
	if s.cfg.SendBuffer <= 0 {
		return
	}
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(s.cfg.SendBuffer)
	}
}

// readBufferSize is a connection's read buffer.
const readBufferSize = 512

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Drain tells every client to reconnect (connectionRefreshRequired with
// reason serverShutdown), refuses new connections, waits up to grace for
// clients to leave, then closes the rest with 1012.
func (s *Server) Drain(ctx context.Context, grace time.Duration) {
	s.mu.Lock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdownNotice(grace)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.live.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
		}
	}
	s.mu.Lock()
	for c := range s.conns {
		c.closeServer(1012, "serverShutdown")
	}
	s.mu.Unlock()
	// Give the writers a moment to send their close frames.
	end := time.Now().Add(s.cfg.CloseWait)
	for s.live.Load() > 0 && time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func newConnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type nopObserver struct{}

func (nopObserver) ConnectionOpened(string) {}
func (nopObserver) ConnectionClosed(string) {}
func (nopObserver) ErrorSent(string)        {}
func (nopObserver) FramesWritten(int, int)  {}
func (nopObserver) RateLimited(string)      {}
func (nopObserver) SlowConsumer(string)     {}

// acquireIP counts one more open connection for ip, unless ip is at its
// bound.
func (s *Server) acquireIP(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnectionsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) releaseIP(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
		return
	}
	s.perIP[ip]--
}

// QueuedMessages is the number of messages waiting in every connection's
// queue, for the queue-depth gauge.
func (s *Server) QueuedMessages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		n += c.q.Len()
	}
	return n
}
