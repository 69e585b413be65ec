package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/autotls"
	"github.com/pentecost/pentecost/internal/bolt"
	"github.com/pentecost/pentecost/internal/inmem"
	"github.com/pentecost/pentecost/internal/ratelimit"
	"github.com/pentecost/pentecost/internal/redis"
	"github.com/pentecost/pentecost/internal/ws"
	"github.com/pentecost/pentecost/sessions"
)

// shared is what a node shares with the other nodes of its cluster: in
// memory and an embedded store on a single node, on Redis in a cluster.
// The session rules see the same interfaces either way.
type shared struct {
	store        pentecost.SessionStore
	bus          sessions.Bus
	presence     sessions.Presence
	sessionLimit sessions.Limiter
	connectLimit ws.IPLimiter
	joinLimit    ws.IPLimiter
	// certCache and orderLock keep ACME certificates and serialize orders.
	certCache autocert.Cache
	orderLock autotls.OrderLock
}

// openLocal opens a single node's parts: the embedded store in the data
// dir (or o.Store), an in-memory bus and presence, in-memory limiters.
func (s *Server) openLocal(cfg Config, o Options) (*shared, error) {
	store := o.Store
	if store == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		bs, err := bolt.Open(filepath.Join(cfg.DataDir, "sessions.db"), bolt.Options{Logger: s.log})
		if err != nil {
			return nil, err
		}
		store = bs
	}
	s.opened("store", func(context.Context) error { return store.Close() })
	bus := inmem.NewBus()
	s.opened("bus", func(context.Context) error { return bus.Close() })
	presence := inmem.NewPresence(s.node)
	return &shared{
		store:        store,
		bus:          bus,
		presence:     presence,
		sessionLimit: ratelimit.NewHourly(s.clock),
		connectLimit: ratelimit.NewBuckets(s.clock, cfg.RateConnectsPerMinute, cfg.RateConnectsBurst),
		joinLimit:    ratelimit.NewBuckets(s.clock, cfg.RateJoinsPerMinute, cfg.RateJoinsBurst),
		certCache:    autocert.DirCache(filepath.Join(cfg.DataDir, "acme")),
		orderLock:    autotls.NewLocalLock(),
	}, nil
}

// openRedis opens a cluster node's parts on the Redis at cfg.RedisURL.
func (s *Server) openRedis(ctx context.Context, cfg Config) (*shared, error) {
	redis.LogTo(s.log)
	c, err := redis.Open(ctx, cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	s.opened("redis client", func(context.Context) error { return c.Close() })
	store := redis.NewStore(c)
	s.opened("store", func(context.Context) error { return store.Close() })
	presence := redis.NewPresence(c, s.node, cfg.NodeTTL, s.log)
	if err := presence.Start(ctx); err != nil {
		return nil, fmt.Errorf("redis: node heartbeat: %w", err)
	}
	s.opened("presence", func(ctx context.Context) error { presence.Stop(ctx); return nil })
	bus := redis.NewBus(c, s.log)
	s.opened("bus", func(context.Context) error { return bus.Close() })
	return &shared{
		store:        store,
		bus:          bus,
		presence:     presence,
		sessionLimit: redis.NewHourly(c, s.clock, s.log),
		connectLimit: redis.NewLimiter(c, s.clock, s.log, "connect", cfg.RateConnectsPerMinute, cfg.RateConnectsBurst),
		joinLimit:    redis.NewLimiter(c, s.clock, s.log, "join", cfg.RateJoinsPerMinute, cfg.RateJoinsBurst),
		certCache:    redis.NewCertCache(c),
		orderLock:    redis.NewOrderLock(c),
	}, nil
}

// closer is one part New opened, with how to close it.
type closer struct {
	name  string
	close func(context.Context) error
}

// opened records a part New just opened: close closes it, in reverse order
// of opening, at Shutdown or when a later step of New fails.
func (s *Server) opened(name string, close func(context.Context) error) {
	s.closers = append(s.closers, closer{name, close})
}

// closeAll closes every opened part, the last opened first, once. It
// returns the first error.
func (s *Server) closeAll(ctx context.Context) error {
	var first error
	for i := len(s.closers) - 1; i >= 0; i-- {
		c := s.closers[i]
		if err := c.close(ctx); err != nil {
			s.log.Warn("close failed", "part", c.name, "err", err)
			if first == nil {
				first = fmt.Errorf("close %s: %w", c.name, err)
			}
		}
	}
	s.closers = nil
	return first
}

// sessionConfig is the rules' part of cfg.
func sessionConfig(cfg Config, cluster bool) sessions.Config {
	sweep := cfg.SweepInterval
	if cluster && (sweep <= 0 || sweep > 5*time.Second) {
		// Dead speakers' nodes are noticed by the sweep: keep it frequent
		// in a cluster.
		sweep = 5 * time.Second
	}
	reassert := cfg.NodeTTL / 4
	if reassert <= 0 {
		reassert = 2500 * time.Millisecond
	}
	return sessions.Config{
		MaxListeners:     cfg.MaxListenersPerSession,
		SpeakerGrace:     cfg.SpeakerGrace,
		StartTimeout:     cfg.SessionStartTimeout,
		MaxDuration:      cfg.SessionMaxDuration,
		EndedRetention:   24 * time.Hour,
		StatusInterval:   cfg.StatusInterval,
		StatusMinGap:     time.Second,
		RefreshOverlap:   cfg.RefreshOverlap,
		SweepInterval:    sweep,
		ReassertInterval: reassert,
		SessionsPerHour:  cfg.RateSessionsPerHour,
		Transcode:        cfg.Transcode,
		DefaultPacketMs:  cfg.PacketMs,
	}
}
