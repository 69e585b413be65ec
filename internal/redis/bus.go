package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Bus carries session events between nodes over Redis pub/sub, one channel
// per session. A node subscribes to a session's channel only while it has
// listeners there, so a chunk crosses Redis once per interested node.
type Bus struct {
	c   *Client
	log *slog.Logger

	mu      sync.Mutex
	ps      *goredis.PubSub
	subs    map[string]bool
	handler func(sessionID string, msg []byte)
	done    chan struct{}
}

// NewBus returns a bus; handler receives every message of subscribed
// sessions (including the node's own: callers skip those by origin).
func NewBus(c *Client, log *slog.Logger, handler func(sessionID string, msg []byte)) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{c: c, log: log, subs: map[string]bool{}, handler: handler, done: make(chan struct{})}
	// PubSub reconnects and resubscribes by itself after a Redis outage.
	b.ps = c.rdb.Subscribe(context.Background())
	go b.run()
	return b
}

func (b *Bus) channel(sid string) string { return b.c.key("chan", sid) }

func (b *Bus) run() {
	defer close(b.done)
	prefix := b.c.key("chan") + ":"
	for m := range b.ps.Channel(goredis.WithChannelSize(4096)) {
		sid, ok := strings.CutPrefix(m.Channel, prefix)
		if !ok {
			continue
		}
		b.handler(sid, []byte(m.Payload))
	}
}

// Subscribe starts receiving a session's messages.
func (b *Bus) Subscribe(ctx context.Context, sid string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[sid] {
		return nil
	}
	if err := b.ps.Subscribe(ctx, b.channel(sid)); err != nil {
		return fmt.Errorf("redis: subscribe %s: %w", sid, err)
	}
	b.subs[sid] = true
	return nil
}

// Unsubscribe stops receiving a session's messages.
func (b *Bus) Unsubscribe(ctx context.Context, sid string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.subs[sid] {
		return nil
	}
	delete(b.subs, sid)
	if err := b.ps.Unsubscribe(ctx, b.channel(sid)); err != nil {
		return fmt.Errorf("redis: unsubscribe %s: %w", sid, err)
	}
	return nil
}

// Publish sends msg to every node subscribed to the session.
func (b *Bus) Publish(ctx context.Context, sid string, msg []byte) error {
	if err := b.c.rdb.Publish(ctx, b.channel(sid), msg).Err(); err != nil {
		return fmt.Errorf("redis: publish %s: %w", sid, err)
	}
	return nil
}

// sequencedScript numbers a message from the session's shared counter (at
// least floor, so a node that numbered chunks alone during a Redis outage is
// never answered with a number it already used), writes the number
// big-endian at byte offset ARGV[3] of the message, and publishes it, in
// one round trip.
// KEYS[1] = counter; ARGV = channel, message, offset (0-based), floor, ttlMillis.
var sequencedScript = goredis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[4])
if cur < floor then cur = floor end
cur = cur % 4294967296
redis.call('SET', KEYS[1], (cur + 1) % 4294967296, 'PX', ARGV[5])
local m, at = ARGV[2], tonumber(ARGV[3])
local msg = string.sub(m, 1, at) .. struct.pack('>I4', cur) .. string.sub(m, at + 5)
redis.call('PUBLISH', ARGV[1], msg)
return cur
`)

// seqTTL keeps a session's counter well past any session's life.
const seqTTL = 72 * time.Hour

// PublishSequenced numbers msg from the session's counter, across nodes,
// and publishes it; it returns the number used.
func (b *Bus) PublishSequenced(ctx context.Context, sid string, msg []byte, seqAt int, floor uint32) (uint32, error) {
	n, err := sequencedScript.Run(ctx, b.c.rdb, []string{b.c.key("seq", sid)},
		b.channel(sid), msg, seqAt, floor, seqTTL.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis: publish audio %s: %w", sid, err)
	}
	return uint32(n), nil
}

// Close stops the subscription.
func (b *Bus) Close() error {
	err := b.ps.Close()
	<-b.done
	return err
}
