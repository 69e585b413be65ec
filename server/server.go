package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/internal/httpapi"
	"github.com/pentecost/pentecost/internal/lan"
	"github.com/pentecost/pentecost/internal/links"
	"github.com/pentecost/pentecost/internal/metrics"
	"github.com/pentecost/pentecost/internal/ws"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
	"github.com/pentecost/pentecost/sessions"
)

// Server is one assembled node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	clock    clockwork.Clock
	node     string
	Auth     *auth.Authenticator
	Sessions *sessions.Service
	WS       *ws.Server
	Metrics  *metrics.Metrics
	tls      *tlsSetup
	links    *links.Handler
	handler  http.Handler
	http     *http.Server
	// closers are the parts New opened, in order; they are closed in
	// reverse, at Shutdown or when a later step of New fails.
	closers []closer
}

// Options are what tests inject.
type Options struct {
	Clock  clockwork.Clock
	Logger *slog.Logger
	// Store replaces the embedded store (tests of store failures); the
	// node is then a single node.
	Store pentecost.SessionStore
	// Interfaces lists the network interfaces for GET /links (nil: the
	// machine's).
	Interfaces lan.Source
}

// New assembles a node: it opens the parts in order (shared state, token
// verifier, metrics, session rules, transport) and resumes the sessions
// this node takes up; nothing listens until Serve. If a step fails, every
// part opened before it is closed again, the last first.
func New(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkTLS(cfg); err != nil {
		return nil, err
	}
	if _, err := protocol.CheckPacketMs(cfg.PacketMs); err != nil {
		return nil, fmt.Errorf("--packet-ms %d: %w", cfg.PacketMs, err)
	}
	node := sessions.NewNodeID()
	s := &Server{cfg: cfg, log: o.Logger.With("node", node), clock: o.Clock, node: node}
	if err := s.build(ctx, o); err != nil {
		_ = s.closeAll(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// build opens every part of the node, recording each for closeAll.
func (s *Server) build(ctx context.Context, o Options) error {
	cfg := s.cfg
	// Background work (the JWKS refresh) lives until Shutdown.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	s.opened("background work", func(context.Context) error { stopBackground(); return nil })

	origins := ws.ParseOrigins(cfg.AllowedOrigins)
	clientIP, err := ws.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}

	cluster := cfg.RedisURL != "" && o.Store == nil
	var sh *shared
	if cluster {
		sh, err = s.openRedis(ctx, cfg)
	} else {
		sh, err = s.openLocal(cfg, o)
	}
	if err != nil {
		return err
	}
	if s.tls, err = newTLS(cfg, sh.certCache, sh.orderLock, s.log); err != nil {
		return err
	}
	s.opened("tls", func(ctx context.Context) error { s.tls.shutdown(ctx); return nil })

	a, err := auth.New(bg, auth.Config{
		JWKSURL:            cfg.JWKSURL,
		Issuer:             cfg.JWTIssuer,
		Audience:           cfg.JWTAudience,
		Secret:             cfg.JWTSecret,
		AllowNoExp:         cfg.JWTAllowNoExp,
		DataDir:            cfg.DataDir,
		ProcessorRoleClaim: cfg.ProcessorRoleClaim,
		Clock:              s.clock,
		Logger:             s.log,
	})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	s.Auth = a

	// The metrics read live figures from the service and the transport at
	// scrape time; both exist before the first scrape.
	gauges := &liveGauges{}
	s.Metrics = metrics.New(gauges, gauges)

	s.Sessions = sessions.New(sessionConfig(cfg, cluster), sessions.Options{
		Store:    sh.store,
		Clock:    s.clock,
		Logger:   s.log,
		IDs:      sessionid.Generator{},
		Limiter:  sh.sessionLimit,
		Observer: s.Metrics,
		Bus:      sh.bus,
		Presence: sh.presence,
		// Redis keys expire on real time: the shared state is re-asserted
		// on it too.
		SharedStateClock: clockwork.NewRealClock(),
	})
	if err := s.Sessions.Start(ctx); err != nil {
		return err
	}
	s.opened("sessions", func(context.Context) error { s.Sessions.Close(); return nil })

	queue := hub.QueueOptions{MaxAudio: cfg.ListenerQueueChunks, StallTimeout: cfg.SlowListenerTimeout}
	s.WS = ws.New(ws.Config{
		HeartbeatTimeout:    cfg.HeartbeatTimeout,
		PingInterval:        cfg.PingInterval,
		RefreshAfter:        cfg.ConnectionRefreshAfter,
		WarningAfter:        cfg.ConnectionWarningAfter,
		MaxDuration:         cfg.ConnectionMaxDuration,
		WriteTimeout:        cfg.WriteTimeout,
		WriteCoalesce:       cfg.WriteCoalesce,
		SendBuffer:          cfg.SendBufferBytes,
		AudioMaxChunk:       cfg.AudioMaxChunkBytes,
		AudioMaxPerSecond:   cfg.AudioMaxChunksPerSec,
		JSONMaxBytes:        cfg.JSONMaxBytes,
		HeartbeatsPerMinute: cfg.RateHeartbeatsPerMinute,
		HeartbeatBurst:      cfg.RateHeartbeatBurst,
		ControlPerSecond:    cfg.RateControlPerSecond,
		MaxConnections:      cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		Queue:               queue,
	}, ws.Options{
		Sessions:     s.Sessions,
		Auth:         a,
		Clock:        s.clock,
		Logger:       s.log,
		Origins:      origins,
		ClientIP:     clientIP,
		ConnectLimit: sh.connectLimit,
		JoinLimit:    sh.joinLimit,
		Observer:     s.Metrics,
	})
	gauges.set(s.Sessions, s.WS)

	mux := http.NewServeMux()
	mux.Handle("GET /ws", s.WS)
	api := &httpapi.API{Sessions: s.Sessions, Auth: a, CORS: origins, Clock: s.clock, Logger: s.log}
	api.Register(mux)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	registerWeb(mux)
	s.registerLinks(mux, o.Interfaces)
	s.handler = securityHeaders(mux)
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// A request line and headers above this get 431 from net/http. It
		// leaves room for a token well past auth's 16 KiB cap, so an
		// oversized token gets the protocol's answer (4401, "token is
		// too large") after the upgrade; see docs/protocol.md, 4.1.
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       httpErrorLog(s.log.Handler()),
		TLSConfig:      s.tls.tlsConfig(),
	}
	return nil
}

// Handler is the node's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.links.Listening(l.Addr(), PublicBase(s.cfg, l.Addr()))
	err := s.tls.serve(s.http, l, s.log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown asks every client to move (serverShutdown), waits up to the
// drain grace, closes the rest with 1012, stops accepting, then closes every
// part of the node in reverse order of opening. Sessions stay persisted for
// the next start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Sessions.BeginShutdown()
	// The listener stays open through the drain: a client that reconnects
	// here meanwhile gets 503 with Retry-After, which it can act on, not a
	// refused connection.
	s.WS.Drain(ctx, s.cfg.ShutdownGrace)
	// Hijacked WebSockets are not the HTTP server's to wait for.
	_ = s.http.Shutdown(ctx)
	return s.closeAll(ctx)
}

// Node is the node's ID: in session records, and in every log line.
func (s *Server) Node() string { return s.node }

// maxHeaderBytes bounds a request's line and headers together.
const maxHeaderBytes = 64 * 1024

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// liveGauges lets the metrics be built before the parts they read: until
// set, every gauge reads zero.
type liveGauges struct {
	mu  sync.RWMutex
	svc *sessions.Service
	ws  *ws.Server
}

func (g *liveGauges) set(svc *sessions.Service, w *ws.Server) {
	g.mu.Lock()
	g.svc, g.ws = svc, w
	g.mu.Unlock()
}

func (g *liveGauges) Stats() sessions.Stats {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.svc == nil {
		return sessions.Stats{}
	}
	return g.svc.Stats()
}

func (g *liveGauges) QueuedMessages() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.ws == nil {
		return 0
	}
	return g.ws.QueuedMessages()
}

func (g *liveGauges) Connections() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.ws == nil {
		return 0
	}
	return g.ws.Connections()
}
