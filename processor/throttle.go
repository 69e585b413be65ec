package processor

import (
	"sync"
	"time"
)

// Throttle keeps a repeating failure from flooding the log: the first line
// of a kind goes out at once, repeats at most once per Interval, and the
// line that goes out tells how many were held back.
//
// Kinds live in scopes so that a caller can drop the state of something
// that has ended (a session) with Forget; otherwise a long-lived process
// would keep one entry per session it ever saw.
type Throttle struct {
	interval time.Duration

	mu   sync.Mutex
	seen map[throttleKey]*throttled
}

type throttleKey struct{ scope, kind string }

type throttled struct {
	last time.Time
	held int
}

// NewThrottle returns a Throttle that lets one line of a kind out per
// interval.
func NewThrottle(interval time.Duration) *Throttle {
	return &Throttle{interval: interval, seen: map[throttleKey]*throttled{}}
}

// Allow reports whether a line of kind in scope may be logged now and, if
// so, how many lines of it were held back since the last one.
func (t *Throttle) Allow(scope, kind string) (ok bool, held int) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := throttleKey{scope, kind}
	st := t.seen[k]
	if st == nil {
		st = &throttled{}
		t.seen[k] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < t.interval {
		st.held++
		return false, 0
	}
	held = st.held
	st.last, st.held = now, 0
	return true, held
}

// Forget drops the state of every kind in scope.
func (t *Throttle) Forget(scope string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.seen {
		if k.scope == scope {
			delete(t.seen, k)
		}
	}
}
