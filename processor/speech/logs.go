package speech

import (
	"fmt"
	"sync"
	"time"
)

// throttle keeps a failing stage from flooding the log: the first failure
// of a kind is logged at once, repeats at most every interval, with a count
// of the lines held back.
type throttle struct {
	logf     func(format string, args ...any)
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

func newThrottle(logf func(string, ...any), interval time.Duration) *throttle {
	return &throttle{logf: logf, interval: interval, now: time.Now, seen: map[string]*throttled{}}
}

// log logs the line unless a line of the same key went out within the
// interval.
func (t *throttle) log(key, format string, args ...any) {
	t.mu.Lock()
	st := t.seen[key]
	if st == nil {
		st = &throttled{}
		t.seen[key] = st
	}
	now := t.now()
	if !st.last.IsZero() && now.Sub(st.last) < t.interval {
		st.suppressed++
		t.mu.Unlock()
		return
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	t.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if n > 0 {
		line += fmt.Sprintf(" (%d more like this since the last report)", n)
	}
	t.logf("%s", line)
}
