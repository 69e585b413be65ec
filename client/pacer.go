package client

import (
	"context"
	"time"
)

// Pacer releases one chunk per Interval in real time. It schedules against
// absolute times (start + n*Interval) rather than sleeping Interval after
// each send, so the time spent reading and sending does not accumulate into
// drift; a time.Ticker would not drift either but silently drops ticks when
// the sender falls behind, losing that time for good.
//
// A sender that falls further behind than MaxLag (after a reconnect, a
// stalled pipe) does not burst to catch up, which would trip the server's
// chunk rate limit: the schedule restarts from now.
type Pacer struct {
	Interval time.Duration
	MaxLag   time.Duration

	// Clock, replaceable in tests.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	start time.Time
	n     int64
}

// NewPacer returns a Pacer for chunks of duration interval, allowing a lag
// of five chunks (at least 100 ms) before it restarts the schedule.
func NewPacer(interval time.Duration) *Pacer {
	return &Pacer{
		Interval: interval,
		MaxLag:   max(5*interval, 100*time.Millisecond),
		Now:      time.Now,
		After:    time.After,
	}
}

// Wait blocks until the next chunk is due. The first call returns at once.
func (p *Pacer) Wait(ctx context.Context) error {
	now := p.Now()
	if p.start.IsZero() {
		p.start, p.n = now, 1
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(p.n) * p.Interval)
	if lag := now.Sub(due); lag > p.MaxLag {
		p.start, p.n = now, 1
		return ctx.Err()
	}
	p.n++
	if d := due.Sub(now); d > 0 {
		select {
		case <-p.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// Reset makes the next Wait return at once and restart the schedule.
func (p *Pacer) Reset() { p.start = time.Time{} }
