package redis

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/internal/bustest"
	"github.com/pentecost/pentecost/internal/presencetest"
	"github.com/pentecost/pentecost/sessions"
)

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presencetest.Join {
		c := testClient(t)
		return func(t *testing.T) (sessions.Presence, func()) {
			p := NewPresence(c, sessions.NewNodeID(), time.Minute, nil)
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			stop := func() { p.Stop(context.Background()) }
			t.Cleanup(stop)
			return p, stop
		}
	})
}

// A node that crashes stops renewing its heartbeat: its listeners leave
// every count when the key expires, without anyone calling Stop.
func TestPresenceForgetsANodeWhoseHeartbeatExpired(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	a := NewPresence(c, "aaaaaaaaaaaaaaaa", time.Minute, nil)
	b := NewPresence(c, "bbbbbbbbbbbbbbbb", 300*time.Millisecond, nil)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	if err := b.beat(ctx); err != nil { // b beats once and then "crashes"
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, "s", "es", 0, false); err != nil {
		t.Fatal(err)
	}
	if total, _, _ := a.Counts(ctx, "s"); total != 1 {
		t.Fatalf("before the heartbeat expired: %d", total)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		total, _, _ := a.Counts(ctx, "s")
		alive, _ := a.Alive(ctx, b.Node())
		if total == 0 && !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead node still counted: %d, alive %v", total, alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSharedLimiter(t *testing.T) {
	c := testClient(t)
	clock := clockwork.NewFakeClock()
	a := NewLimiter(c, clock, nil, "join", 60, 3)
	b := NewLimiter(c, clock, nil, "join", 60, 3) // another node, same buckets
	for i := 0; i < 3; i++ {
		l := a
		if i == 1 {
			l = b
		}
		if ok, _ := l.Allow("203.0.113.9"); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	ok, wait := b.Allow("203.0.113.9")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th take: ok %v wait %v", ok, wait)
	}
	if ok, _ := a.Allow("198.51.100.1"); !ok {
		t.Fatal("another IP has its own bucket")
	}
	clock.Advance(time.Second)
	if ok, _ := a.Allow("203.0.113.9"); !ok {
		t.Fatal("refilled after a second at 60/min")
	}
}

func TestLimiterFailsOpen(t *testing.T) {
	c := testClient(t)
	l := NewLimiter(c, clockwork.NewFakeClock(), nil, "join", 60, 1)
	_ = c.Close()
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("an unreachable limiter must allow")
	}
}

func TestBusConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) func(t *testing.T) sessions.Bus {
		c := testClient(t)
		return func(t *testing.T) sessions.Bus {
			b := NewBus(c, nil)
			t.Cleanup(func() { _ = b.Close() })
			return b
		}
	})
}
