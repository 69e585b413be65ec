package ws

import (
	"time"

	"golang.org/x/time/rate"
)

// retryOf is how long until l has a token again.
func retryOf(l *rate.Limiter, now time.Time) time.Duration {
	r := l.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}
