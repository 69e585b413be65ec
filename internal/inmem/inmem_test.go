package inmem

import (
	"testing"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/bustest"
	"github.com/pentecost/pentecost/internal/presencetest"
	"github.com/pentecost/pentecost/internal/storetest"
	"github.com/pentecost/pentecost/sessions"
)

func TestBusConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) func(t *testing.T) sessions.Bus {
		// The nodes of an in-process network share one bus.
		b := NewBus()
		t.Cleanup(func() { _ = b.Close() })
		return func(*testing.T) sessions.Bus { return b }
	})
}

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presencetest.Join {
		var first *Presence
		return func(*testing.T) (sessions.Presence, func()) {
			var p *Presence
			if first == nil {
				first = NewPresence(sessions.NewNodeID())
				p = first
			} else {
				p = first.Peer()
			}
			return p, p.Stop
		}
	})
}

func TestClosedBusRefuses(t *testing.T) {
	b := NewBus()
	_ = b.Close()
	if _, err := b.Subscribe(t.Context(), "s", func([]byte) {}); err != ErrClosed {
		t.Fatalf("subscribe: %v", err)
	}
	if err := b.Send(t.Context(), []sessions.Envelope{{Topic: "s"}}); err != ErrClosed {
		t.Fatalf("send: %v", err)
	}
	if _, err := b.NextSeq(t.Context(), "s"); err != ErrClosed {
		t.Fatalf("next seq: %v", err)
	}
	if err := b.Ping(t.Context()); err != ErrClosed {
		t.Fatalf("ping: %v", err)
	}
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) pentecost.SessionStore { return NewStore() })
}
