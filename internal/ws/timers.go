package ws

import (
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/protocol"
)

// startTimers arms the idle check, the pings and the age timers. All of them
// run on the injected clock, so tests drive hours of connection life with a
// fake clock.
func (c *conn) startTimers() {
	cfg := c.srv.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg.HeartbeatTimeout > 0 {
		c.timers = append(c.timers, c.idleTimer(cfg.HeartbeatTimeout))
	}
	if cfg.PingInterval > 0 {
		c.timers = append(c.timers, loop(c.clock, cfg.PingInterval, func() time.Duration {
			c.q.Ping()
			return cfg.PingInterval
		}))
	}
	c.armAgeLocked()
}

// idleTimer closes the connection after timeout without any inbound frame
// (pongs and heartbeats included). It re-arms itself for the time left
// rather than resetting on every frame, which would cost a timer operation
// per audio chunk.
func (c *conn) idleTimer(timeout time.Duration) stopper {
	return loop(c.clock, timeout, func() time.Duration {
		idle := c.clock.Now().Sub(time.Unix(0, c.lastActive.Load()))
		if idle < timeout {
			return timeout - idle
		}
		c.send(&protocol.ConnectionTimeout{
			Header:      protocol.H(protocol.TypeConnectionTimeout, c.clock.Now()),
			IdleSeconds: int(idle / time.Second),
		})
		c.logger().Info("idle connection closed", "idleSeconds", int(idle/time.Second))
		c.closeServer(4408, "idleTimeout")
		return 0
	})
}

// stopper is a timer as far as teardown cares.
type stopper interface{ Stop() bool }

// loopTimer runs f after d, then again after whatever f returns, until f
// returns 0 or the timer is stopped. The lock makes the first run wait until
// the timer is stored, however short d is.
type loopTimer struct {
	mu      sync.Mutex
	t       clockwork.Timer
	stopped bool
}

func loop(clock clockwork.Clock, d time.Duration, f func() time.Duration) *loopTimer {
	lt := &loopTimer{}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.t = clock.AfterFunc(d, func() {
		next := f()
		lt.mu.Lock()
		defer lt.mu.Unlock()
		if next > 0 && !lt.stopped {
			lt.t.Reset(next)
		}
	})
	return lt
}

func (lt *loopTimer) Stop() bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.stopped = true
	return lt.t.Stop()
}

// armAgeLocked (re)starts the refresh, warning and maximum-duration timers
// from c.born.
func (c *conn) armAgeLocked() {
	for _, t := range c.ageTimers {
		t.Stop()
	}
	c.ageTimers = c.ageTimers[:0]
	cfg := c.srv.cfg
	born := c.born
	elapsed := c.clock.Since(born)
	if cfg.RefreshAfter > 0 {
		c.ageTimers = append(c.ageTimers, c.clock.AfterFunc(cfg.RefreshAfter-elapsed, func() { c.refreshRequired(protocol.RefreshMaxDuration, born) }))
	}
	if cfg.WarningAfter > 0 {
		c.ageTimers = append(c.ageTimers, c.clock.AfterFunc(cfg.WarningAfter-elapsed, func() { c.warn(born) }))
	}
	if cfg.MaxDuration > 0 {
		c.ageTimers = append(c.ageTimers, c.clock.AfterFunc(cfg.MaxDuration-elapsed, func() {
			c.mu.Lock()
			current := c.born.Equal(born)
			c.mu.Unlock()
			if current {
				c.logger().Info("connection reached its maximum duration")
				c.closeServer(4410, protocol.RefreshMaxDuration)
			}
		}))
	}
}

// refreshBy is the moment of the hard maximum, or zero when there is none.
func (c *conn) refreshBy(born time.Time) int64 {
	if c.srv.cfg.MaxDuration <= 0 {
		return 0
	}
	return born.Add(c.srv.cfg.MaxDuration).UnixMilli()
}

func (c *conn) refreshRequired(reason string, born time.Time) {
	c.mu.Lock()
	if !c.born.Equal(born) || c.role == "" {
		c.mu.Unlock()
		return
	}
	role := c.role
	c.mu.Unlock()
	c.sendRefreshRequired(role, reason, c.refreshBy(born))
}

// sendRefreshRequired asks the client to move to a new connection by refreshBy
// (Unix milliseconds).
func (c *conn) sendRefreshRequired(role, reason string, refreshBy int64) {
	m := &protocol.ConnectionRefreshRequired{
		Header:       protocol.H(protocol.TypeConnectionRefreshRequired, c.clock.Now()),
		SessionID:    c.sessionID(),
		Role:         role,
		ConnectionID: c.id,
		Reason:       reason,
		RefreshBy:    refreshBy,
	}
	m.TargetLanguage = c.targetLanguage()
	c.send(m)
}

func (c *conn) warn(born time.Time) {
	c.mu.Lock()
	current := c.born.Equal(born) && c.role != ""
	c.mu.Unlock()
	if !current {
		return
	}
	cfg := c.srv.cfg
	var remaining float64
	if cfg.MaxDuration > 0 {
		remaining = (born.Add(cfg.MaxDuration).Sub(c.clock.Now())).Minutes()
		if remaining < 0 {
			remaining = 0
		}
	}
	c.send(&protocol.ConnectionWarning{
		Header:           protocol.H(protocol.TypeConnectionWarning, c.clock.Now()),
		RemainingMinutes: remaining,
		Message:          fmt.Sprintf("This connection closes in %.1f minutes; refresh it to keep listening.", remaining),
	})
}

// shutdownNotice tells the client the server is going away and by when it
// should be on another connection.
func (c *conn) shutdownNotice(grace time.Duration) {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	c.sendRefreshRequired(role, protocol.RefreshServerShutdown, c.clock.Now().Add(grace).UnixMilli())
}

// refreshInPlace restarts the connection's age: warning and maximum count
// from now.
func (c *conn) refreshInPlace() {
	c.mu.Lock()
	c.born = c.clock.Now()
	c.armAgeLocked()
	c.mu.Unlock()
}
