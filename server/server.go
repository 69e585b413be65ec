package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/internal/bolt"
	"github.com/pentecost/pentecost/internal/httpapi"
	"github.com/pentecost/pentecost/internal/lan"
	"github.com/pentecost/pentecost/internal/links"
	"github.com/pentecost/pentecost/internal/metrics"
	"github.com/pentecost/pentecost/internal/ratelimit"
	"github.com/pentecost/pentecost/internal/redis"
	"github.com/pentecost/pentecost/internal/ws"
	"github.com/pentecost/pentecost/sessionid"
	"github.com/pentecost/pentecost/sessions"
)

// Server is one assembled node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	clock    clockwork.Clock
	store    pentecost.SessionStore
	Auth     *auth.Authenticator
	Sessions *sessions.Service
	WS       *ws.Server
	Metrics  *metrics.Metrics
	cluster  *cluster
	tls      *tlsSetup
	links    *links.Handler
	handler  http.Handler
	http     *http.Server
	cancel   context.CancelFunc
}

// Options are what tests inject.
type Options struct {
	Clock  clockwork.Clock
	Logger *slog.Logger
	// Store replaces the embedded store (tests of store failures).
	Store pentecost.SessionStore
	// Interfaces lists the network interfaces for GET /links (nil: the
	// machine's).
	Interfaces lan.Source
}

// New assembles a node. It opens the state store and the token verifier and
// resumes persisted sessions; nothing listens until Serve.
func New(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger
	if err := checkTLS(cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{cfg: cfg, log: log, clock: o.Clock, cancel: cancel}

	var cl *cluster
	if cfg.RedisURL != "" && o.Store == nil {
		var err error
		if cl, err = openCluster(ctx, cfg, o.Clock, log); err != nil {
			cancel()
			return nil, err
		}
		s.cluster = cl
		log = log.With("node", cl.Node())
		s.log = log
		if cfg.SweepInterval <= 0 || cfg.SweepInterval > 5*time.Second {
			// Dead speakers' nodes are noticed by the sweep: keep it
			// frequent in a cluster.
			cfg.SweepInterval = 5 * time.Second
		}
	}

	store := o.Store
	if cl != nil {
		store = cl.store
	}
	if store == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			cancel()
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		bs, err := bolt.Open(filepath.Join(cfg.DataDir, "sessions.db"), bolt.Options{Logger: log})
		if err != nil {
			cancel()
			return nil, err
		}
		store = bs
	}
	s.store = store
	var rc *redis.Client
	if cl != nil {
		rc = cl.client
	}
	tlsSetup, err := newTLS(cfg, rc, log)
	if err != nil {
		s.closeStore()
		cancel()
		return nil, err
	}
	s.tls = tlsSetup

	a, err := auth.New(ctx, auth.Config{
		JWKSURL:            cfg.JWKSURL,
		Issuer:             cfg.JWTIssuer,
		Audience:           cfg.JWTAudience,
		Secret:             cfg.JWTSecret,
		AllowNoExp:         cfg.JWTAllowNoExp,
		DataDir:            cfg.DataDir,
		ProcessorRoleClaim: cfg.ProcessorRoleClaim,
		Clock:              o.Clock,
		Logger:             log,
	})
	if err != nil {
		s.closeStore()
		cancel()
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	s.Auth = a

	queue := hub.QueueOptions{MaxAudio: cfg.ListenerQueueChunks, StallTimeout: cfg.SlowListenerTimeout}
	// The metrics read live figures from the service and the transport at
	// scrape time; both exist before the first scrape.
	var m *metrics.Metrics
	lazy := &lazyLive{}
	m = metrics.New(lazy, lazy)
	s.Metrics = m
	var sessLimiter sessions.Limiter = ratelimit.NewHourly(o.Clock)
	var connectLimit, joinLimit ws.IPLimiter = ratelimit.NewBuckets(o.Clock, cfg.RateConnectsPerMinute, cfg.RateConnectsBurst),
		ratelimit.NewBuckets(o.Clock, cfg.RateJoinsPerMinute, cfg.RateJoinsBurst)
	var sc sessions.Cluster
	if cl != nil {
		sessLimiter = cl.hourly
		connectLimit = cl.limiter("connect", cfg.RateConnectsPerMinute, cfg.RateConnectsBurst)
		joinLimit = cl.limiter("join", cfg.RateJoinsPerMinute, cfg.RateJoinsBurst)
		sc = cl
	}
	s.Sessions = sessions.New(sessions.Config{
		MaxListeners:    cfg.MaxListenersPerSession,
		SpeakerGrace:    cfg.SpeakerGrace,
		StartTimeout:    cfg.SessionStartTimeout,
		MaxDuration:     cfg.SessionMaxDuration,
		EndedRetention:  24 * time.Hour,
		StatusInterval:  cfg.StatusInterval,
		StatusMinGap:    time.Second,
		RefreshOverlap:  cfg.RefreshOverlap,
		SweepInterval:   cfg.SweepInterval,
		SessionsPerHour: cfg.RateSessionsPerHour,
		Queue:           queue,
	}, sessions.Options{
		Store:    store,
		Clock:    o.Clock,
		Logger:   log,
		IDs:      sessionid.Generator{},
		Limiter:  sessLimiter,
		Observer: m,
		Cluster:  sc,
	})
	if cl != nil {
		cl.deliver = s.Sessions.Deliver
		if err := cl.start(ctx, s.Sessions.LocalPresence); err != nil {
			cl.close()
			cancel()
			return nil, err
		}
	}
	if err := s.Sessions.Start(ctx); err != nil {
		s.closeStore()
		cancel()
		return nil, err
	}

	origins := ws.ParseOrigins(cfg.AllowedOrigins)
	clientIP, err := ws.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		s.Sessions.Close()
		s.closeStore()
		cancel()
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
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
		Clock:        o.Clock,
		Logger:       log,
		Origins:      origins,
		ClientIP:     clientIP,
		ConnectLimit: connectLimit,
		JoinLimit:    joinLimit,
		Observer:     m,
	})
	lazy.svc, lazy.ws = s.Sessions, s.WS

	mux := http.NewServeMux()
	mux.Handle("GET /ws", s.WS)
	api := &httpapi.API{Sessions: s.Sessions, Auth: a, CORS: origins, Clock: o.Clock, Logger: log}
	api.Register(mux)
	mux.Handle("GET /metrics", m.Handler())
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
	}
	s.http.TLSConfig = s.tls.tlsConfig()
	return s, nil
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
// drain grace, closes the rest with 1012, stops accepting and closes the
// store. Sessions stay persisted for the next start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.tls.shutdown(ctx)
	s.Sessions.BeginShutdown()
	// The listener stays open through the drain: a client that reconnects
	// here meanwhile gets 503 with Retry-After, which it can act on, not a
	// refused connection.
	s.WS.Drain(ctx, s.cfg.ShutdownGrace)
	// Hijacked WebSockets are not the HTTP server's to wait for.
	_ = s.http.Shutdown(ctx)
	s.Sessions.Close()
	s.cancel()
	err := s.closeStore()
	if s.cluster != nil {
		s.cluster.close()
	}
	return err
}

// Node is the node's cluster ID, or "" on a single node.
func (s *Server) Node() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.Node()
}

func (s *Server) closeStore() error {
	if s.store == nil {
		return nil
	}
	return s.store.Close()
}

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

// lazyLive lets the metrics be built before the parts they read.
type lazyLive struct {
	svc *sessions.Service
	ws  *ws.Server
}

func (l *lazyLive) Stats() sessions.Stats {
	if l.svc == nil {
		return sessions.Stats{}
	}
	return l.svc.Stats()
}

func (l *lazyLive) QueuedMessages() int {
	if l.ws == nil {
		return 0
	}
	return l.ws.QueuedMessages()
}

func (l *lazyLive) Connections() int {
	if l.ws == nil {
		return 0
	}
	return l.ws.Connections()
}
