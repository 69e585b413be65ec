package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/internal/redis"
)

// cluster bundles a node's Redis parts and implements sessions.Cluster.
type cluster struct {
	client   *redis.Client
	store    *redis.Store
	presence *redis.Presence
	bus      *redis.Bus
	hourly   *redis.Hourly
	clock    clockwork.Clock
	log      *slog.Logger
	node     string

	mu      sync.Mutex
	deliver func(sid string, msg []byte)
}

func openCluster(ctx context.Context, cfg Config, clock clockwork.Clock, log *slog.Logger) (*cluster, error) {
	c, err := redis.Open(ctx, cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	cl := &cluster{client: c, clock: clock, log: log, node: hex.EncodeToString(id[:])}
	cl.store = redis.NewStore(c)
	cl.presence = redis.NewPresence(c, cl.node, cfg.NodeTTL, log)
	cl.hourly = redis.NewHourly(c, clock, log)
	cl.bus = redis.NewBus(c, log, func(sid string, msg []byte) {
		cl.mu.Lock()
		d := cl.deliver
		cl.mu.Unlock()
		if d != nil {
			d(sid, msg)
		}
	})
	return cl, nil
}

func (c *cluster) start(ctx context.Context, snapshot func() map[string]map[string]int) error {
	return c.presence.Start(ctx, snapshot)
}

func (c *cluster) limiter(name string, perMinute float64, burst int) *redis.Limiter {
	return redis.NewLimiter(c.client, c.clock, c.log, name, perMinute, burst)
}

func (c *cluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.presence.Stop(ctx)
	_ = c.bus.Close()
	_ = c.client.Close()
}

func (c *cluster) Node() string { return c.node }

func (c *cluster) Join(ctx context.Context, sid, lang string, max int, allowOver bool) (int, bool, bool, error) {
	return c.presence.Join(ctx, sid, lang, max, allowOver)
}

func (c *cluster) Leave(ctx context.Context, sid, lang string) error {
	return c.presence.Leave(ctx, sid, lang)
}

func (c *cluster) Counts(ctx context.Context, sid string) (int, map[string]int, error) {
	return c.presence.Counts(ctx, sid)
}

func (c *cluster) Alive(ctx context.Context, node string) (bool, error) {
	return c.presence.Alive(ctx, node)
}

func (c *cluster) Subscribe(ctx context.Context, topic string) error {
	return c.bus.Subscribe(ctx, topic)
}

func (c *cluster) Unsubscribe(ctx context.Context, topic string) error {
	return c.bus.Unsubscribe(ctx, topic)
}

func (c *cluster) Publish(ctx context.Context, topic string, msg []byte) error {
	return c.bus.Publish(ctx, topic, msg)
}

func (c *cluster) PublishSequenced(ctx context.Context, topic string, msg []byte, seqAt int, floor uint32) (uint32, error) {
	return c.bus.PublishSequenced(ctx, topic, msg, seqAt, floor)
}
