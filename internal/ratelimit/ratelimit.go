// Package ratelimit holds the embedded (single-node) rate limiters: keyed
// token buckets that read time from an injected clock.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Buckets is a set of token buckets, one per key, all with the same rate and
// burst. Keys idle long enough to have refilled completely are forgotten, so
// memory stays bounded by the keys active in the last refill period.
type Buckets struct {
	clock clockwork.Clock
	limit rate.Limit
	burst int

	mu        sync.Mutex
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

// NewBuckets returns buckets refilling at perMinute tokens a minute with the
// given burst. perMinute <= 0 disables the limit.
func NewBuckets(clock clockwork.Clock, perMinute float64, burst int) *Buckets {
	if burst < 1 {
		burst = 1
	}
	l := rate.Inf
	if perMinute > 0 {
		l = rate.Limit(perMinute / 60)
	}
	return &Buckets{clock: clock, limit: l, burst: burst, m: make(map[string]*rate.Limiter), lastSweep: clock.Now()}
}

// Allow takes one token for key. When none is left it reports how long until
// one will be.
func (b *Buckets) Allow(key string) (bool, time.Duration) {
	if b.limit == rate.Inf {
		return true, 0
	}
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	l := b.m[key]
	if l == nil {
		l = rate.NewLimiter(b.limit, b.burst)
		b.m[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// fullAfter is how long an untouched bucket takes to refill completely.
func (b *Buckets) fullAfter() time.Duration {
	return time.Duration(float64(b.burst) / float64(b.limit) * float64(time.Second))
}

func (b *Buckets) sweepLocked(now time.Time) {
	full := b.fullAfter()
	if now.Sub(b.lastSweep) < full {
		return
	}
	b.lastSweep = now
	for k, l := range b.m {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.m, k)
		}
	}
}

// Len is the number of keys held, for tests of the memory bound.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Hourly limits a keyed action to perHour per hour, as a bucket of perHour
// tokens refilled evenly over the hour. It implements the session layer's
// Limiter.
type Hourly struct {
	clock clockwork.Clock
	mu    sync.Mutex
	sets  map[int]*Buckets
}

// NewHourly returns an hourly limiter.
func NewHourly(clock clockwork.Clock) *Hourly {
	return &Hourly{clock: clock, sets: make(map[int]*Buckets)}
}

// Allow takes one token for key.
func (h *Hourly) Allow(_ context.Context, key string, perHour int) (bool, time.Duration, error) {
	h.mu.Lock()
	b := h.sets[perHour]
	if b == nil {
		b = NewBuckets(h.clock, float64(perHour)/60, perHour)
		h.sets[perHour] = b
	}
	h.mu.Unlock()
	ok, d := b.Allow(key)
	return ok, d, nil
}
