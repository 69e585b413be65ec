package autotls

import (
	"context"
	"sync"
)

// OrderLock makes sure one certificate order per domain runs at a time
// across everything that shares the certificate cache: the nodes of a
// cluster would otherwise each order the same certificate when they start
// together. A node takes it before the first handshake for a domain; after
// waiting, it usually finds the certificate another node just stored.
type OrderLock interface {
	// Lock waits until the caller holds the lock named key, or ctx ends.
	// The returned release must be called once.
	Lock(ctx context.Context, key string) (release func(), err error)
}

// LocalLock is the OrderLock of a single node: a keyed mutex.
type LocalLock struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// NewLocalLock returns an OrderLock for one process.
func NewLocalLock() *LocalLock { return &LocalLock{held: map[string]chan struct{}{}} }

// Lock implements OrderLock.
func (l *LocalLock) Lock(ctx context.Context, key string) (func(), error) {
	for {
		l.mu.Lock()
		ch, busy := l.held[key]
		if !busy {
			ch = make(chan struct{})
			l.held[key] = ch
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.held, key)
					l.mu.Unlock()
					close(ch)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
