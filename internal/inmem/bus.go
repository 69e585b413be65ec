package inmem

import (
	"context"
	"errors"
	"sync"

	"github.com/pentecost/pentecost/sessions"
)

// ErrClosed is returned by a closed Bus.
var ErrClosed = errors.New("inmem: bus is closed")

// Bus is a sessions.Bus in memory: Send calls every subscriber of the topic
// at once, on the sender's goroutine, outside the bus's lock.
type Bus struct {
	mu     sync.Mutex
	subs   map[string]map[*subscription]struct{}
	next   map[string]uint32 // per topic: one past the highest number sent
	closed bool
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{subs: map[string]map[*subscription]struct{}{}, next: map[string]uint32{}}
}

type subscription struct {
	b     *Bus
	topic string
	fn    func([]byte)
}

// Subscribe implements sessions.Bus.
func (b *Bus) Subscribe(ctx context.Context, topic string, fn func([]byte)) (sessions.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	sub := &subscription{b: b, topic: topic, fn: fn}
	if b.subs[topic] == nil {
		b.subs[topic] = map[*subscription]struct{}{}
	}
	b.subs[topic][sub] = struct{}{}
	return sub, nil
}

// Cancel implements sessions.Subscription.
func (s *subscription) Cancel(context.Context) error {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if set := b.subs[s.topic]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.subs, s.topic)
		}
	}
	return nil
}

// Send implements sessions.Bus.
func (b *Bus) Send(ctx context.Context, msgs []sessions.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, m := range msgs {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		if m.Numbered {
			if next, cur := m.Seq+1, b.next[m.Counter()]; next > cur || cur-next > 1<<31 {
				b.next[m.Counter()] = next
			}
		}
		fns := make([]func([]byte), 0, len(b.subs[m.Topic]))
		for sub := range b.subs[m.Topic] {
			fns = append(fns, sub.fn)
		}
		b.mu.Unlock()
		for _, fn := range fns {
			fn(m.Msg)
		}
	}
	return nil
}

// NextSeq implements sessions.Bus.
func (b *Bus) NextSeq(ctx context.Context, topic string) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrClosed
	}
	return b.next[topic], nil
}

// Ping implements sessions.Bus.
func (b *Bus) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close makes every later call fail and forgets the subscribers.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.subs = map[string]map[*subscription]struct{}{}
	return nil
}
