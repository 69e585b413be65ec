// Package ctxtime has the one context-aware sleep the clients, the processor
// and the load tool share.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, and reports whether d passed. A d of
// zero or less returns at once, true unless ctx has ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
