package client

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces reconnection attempts: exponential from Initial to Max,
// each delay drawn at random from its upper half so that many clients
// dropped together (a server restart) do not return in lockstep.
type Backoff struct {
	Initial time.Duration // 0 means 250 ms
	Max     time.Duration // 0 means 10 s

	attempt int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	initial, limit := b.Initial, b.Max
	if initial <= 0 {
		initial = 250 * time.Millisecond
	}
	if limit <= 0 {
		limit = 10 * time.Second
	}
	d := initial
	for i := 0; i < b.attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

// Reset starts over from Initial, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }
