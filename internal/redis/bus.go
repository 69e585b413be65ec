package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/sessions"
)

// Bus is a sessions.Bus on Redis pub/sub: one channel per topic (a
// session's control events, its audio). A node subscribes to a session's
// audio only while it has listeners or the speaker of it, so a chunk
// crosses Redis once per interested node, not once per listener.
type Bus struct {
	c   *Client
	log *slog.Logger
	ps  *goredis.PubSub

	mu       sync.Mutex
	handlers map[string]map[*subscription]struct{} // channel → its subscriptions
	closed   bool

	// netMu serialises SUBSCRIBE and UNSUBSCRIBE, each of which brings
	// the connection's channels in line with handlers.
	netMu sync.Mutex
	done  chan struct{}
}

// NewBus returns a bus on c. Close it to stop its receiving goroutine.
func NewBus(c *Client, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{c: c, log: log, handlers: map[string]map[*subscription]struct{}{}, done: make(chan struct{})}
	// PubSub reconnects and resubscribes by itself after a Redis outage.
	b.ps = c.rdb.Subscribe(context.Background())
	go b.run()
	return b
}

func (b *Bus) channel(topic string) string { return b.c.key("chan", topic) }
func (b *Bus) seqKey(topic string) string  { return b.c.key("seq", topic) }

func (b *Bus) run() {
	defer close(b.done)
	for m := range b.ps.Channel(goredis.WithChannelSize(4096)) {
		b.mu.Lock()
		fns := make([]func([]byte), 0, len(b.handlers[m.Channel]))
		for sub := range b.handlers[m.Channel] {
			fns = append(fns, sub.fn)
		}
		b.mu.Unlock()
		if len(fns) == 0 {
			continue
		}
		msg := []byte(m.Payload)
		for _, fn := range fns {
			fn(msg)
		}
	}
}

type subscription struct {
	b       *Bus
	channel string
	fn      func([]byte)
}

// Subscribe implements sessions.Bus. When Redis cannot be reached the
// subscription stands: it is logged, and the connection subscribes as soon
// as it is back.
func (b *Bus) Subscribe(ctx context.Context, topic string, fn func([]byte)) (sessions.Subscription, error) {
	sub := &subscription{b: b, channel: b.channel(topic), fn: fn}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errBusClosed
	}
	if b.handlers[sub.channel] == nil {
		b.handlers[sub.channel] = map[*subscription]struct{}{}
	}
	b.handlers[sub.channel][sub] = struct{}{}
	b.mu.Unlock()
	if err := b.sync(ctx, sub.channel); err != nil {
		b.log.Warn("redis subscribe not confirmed; it is renewed when Redis answers", "topic", topic, "err", err)
	}
	return sub, nil
}

// Cancel implements sessions.Subscription.
func (s *subscription) Cancel(ctx context.Context) error {
	b := s.b
	b.mu.Lock()
	if set := b.handlers[s.channel]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.handlers, s.channel)
		}
	}
	b.mu.Unlock()
	return b.sync(ctx, s.channel)
}

var errBusClosed = errors.New("redis: bus is closed")

// sync subscribes the connection to channel if it has handlers, and
// unsubscribes it otherwise. go-redis remembers the channels even when the
// command fails, and renews them on its next connection.
func (b *Bus) sync(ctx context.Context, channel string) error {
	b.netMu.Lock()
	defer b.netMu.Unlock()
	b.mu.Lock()
	want, closed := len(b.handlers[channel]) > 0, b.closed
	b.mu.Unlock()
	if closed {
		return nil
	}
	var err error
	if want {
		err = b.ps.Subscribe(ctx, channel)
	} else {
		err = b.ps.Unsubscribe(ctx, channel)
	}
	if err != nil {
		return fmt.Errorf("redis: (un)subscribe %s: %w", channel, err)
	}
	return nil
}

// raiseScript moves a topic's next sequence number up to ARGV[1], never
// back (numbers compare as integers except across the 2^32 wrap), and keeps
// it ARGV[2] ms.
var raiseScript = goredis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local n = tonumber(ARGV[1])
if cur < 0 or n > cur or cur - n > 2147483648 then
  redis.call('SET', KEYS[1], n, 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// seqTTL keeps a session's counter well past any session's life.
const seqTTL = 72 * time.Hour

// Send implements sessions.Bus: one pipeline, one round trip, for every
// message and the highest number of each topic.
func (b *Bus) Send(ctx context.Context, msgs []sessions.Envelope) error {
	if len(msgs) == 0 {
		return nil
	}
	next := map[string]uint32{}
	pipe := b.c.rdb.Pipeline()
	for _, m := range msgs {
		pipe.Publish(ctx, b.channel(m.Topic), m.Msg)
		if !m.Numbered {
			continue
		}
		n := m.Seq + 1
		if cur, ok := next[m.Counter()]; !ok || n > cur || cur-n > 1<<31 {
			next[m.Counter()] = n
		}
	}
	for topic, n := range next {
		raiseScript.EvalSha(ctx, pipe, []string{b.seqKey(topic)}, n, seqTTL.Milliseconds())
	}
	_, err := pipe.Exec(ctx)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// The messages went out but Redis did not know the script yet (or
		// lost it): raise the counters again, loading it on the way.
		err = nil
		for topic, n := range next {
			if e := raiseScript.Run(ctx, b.c.rdb, []string{b.seqKey(topic)}, n, seqTTL.Milliseconds()).Err(); e != nil {
				err = e
			}
		}
	}
	if err != nil {
		return fmt.Errorf("redis: send %d messages: %w", len(msgs), err)
	}
	return nil
}

// NextSeq implements sessions.Bus.
func (b *Bus) NextSeq(ctx context.Context, topic string) (uint32, error) {
	s, err := b.c.rdb.Get(ctx, b.seqKey(topic)).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: sequence of %s: %w", topic, err)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("redis: sequence of %s: %w", topic, err)
	}
	return uint32(n), nil
}

// Ping implements sessions.Bus.
func (b *Bus) Ping(ctx context.Context) error { return b.c.Ping(ctx) }

// Close stops the subscription and its goroutine.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	err := b.ps.Close()
	<-b.done
	return err
}
