package sessions_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/inmem"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// faultyBus is the in-memory bus with an outage switch: while down, Send and
// Ping hang until their context ends, as against a stalled Redis.
type faultyBus struct {
	*inmem.Bus
	down atomic.Bool
}

func (f *faultyBus) Send(ctx context.Context, msgs []sessions.Envelope) error {
	if f.down.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.Bus.Send(ctx, msgs)
}

func (f *faultyBus) Ping(ctx context.Context) error {
	if f.down.Load() {
		<-ctx.Done()
		return errors.New("bus down")
	}
	return f.Bus.Ping(ctx)
}

// A stalled bus costs the listeners on other nodes their audio and nobody
// else anything; what was dropped is counted; the bus resumes by itself,
// with fresh audio only.
func TestStalledBusNeverBlocksTheSpeaker(t *testing.T) {
	w := newWorld(t, nil)
	bus := &faultyBus{Bus: w.bus}
	w.busOverride = bus
	a, b := w.node(), w.node()
	rec := a.create("alice")
	sp, spc := a.speak(rec.ID, "alice", false)
	_, local, _ := a.listen(rec.ID, "en")
	_, remote, _ := b.listen(rec.ID, "es")
	sp.Audio([]byte{0})
	local.audio()
	remote.audio()

	bus.down.Store(true)
	start := time.Now()
	for i := 1; i <= 100; i++ {
		sp.Audio([]byte{byte(i)})
		if m := local.audio(); m.audio.Sequence != uint32(i) {
			t.Fatalf("local listener during the stall: seq %d, want %d", m.audio.Sequence, i)
		}
	}
	// Each would wait for the bus's timeout (500 ms) if Audio waited on it.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("100 chunks took %v on a stalled bus", d)
	}
	// A control event does not wait either.
	if err := sp.Control(ctx, &protocol.ClientMessage{Action: protocol.ActMuteBroadcast}); err != nil {
		t.Fatal(err)
	}
	spc.expect(protocol.TypeBroadcastMuted)
	if err := sp.Control(ctx, &protocol.ClientMessage{Action: protocol.ActUnmuteBroadcast}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outage noticed", func() bool { return a.obs.count("busUp") == -1 })
	eventually(t, "the stalled chunks counted as dropped", func() bool { return a.obs.count("busDropped:audio") >= 100 })
	remote.none("audio")

	bus.down.Store(false)
	eventually(t, "the bus back", func() bool { return a.obs.count("busUp") == 1 })
	sp.Audio([]byte{101})
	m := remote.audio()
	if m.audio.Sequence != 101 {
		t.Fatalf("after the stall the remote listener got seq %d first, want the fresh 101", m.audio.Sequence)
	}
	if a.obs.count("busDropped:event") < 1 {
		t.Fatalf("dropped events not counted: %v", a.obs.counts)
	}
	// The other node counted the chunks that never came.
	if n := b.obs.count("busMissing"); n != 100 {
		t.Fatalf("node B counted %d missing chunks, want 100", n)
	}
}

// The queue to the bus is bounded: a bus that falls behind costs the oldest
// audio, counted, never an unbounded backlog.
func TestForwardQueueIsBounded(t *testing.T) {
	w := newWorld(t, nil)
	block := make(chan struct{})
	bus := &slowBus{Bus: w.bus, release: block}
	w.busOverride = bus
	a := w.node()
	rec := a.create("alice")
	sp, _ := a.speak(rec.ID, "alice", false)
	for i := 0; i < 10000; i++ {
		sp.Audio([]byte{1})
	}
	close(block)
	eventually(t, "the excess dropped", func() bool { return a.obs.count("busDropped:audio") >= 10000-4096-512 })
	if a.obs.count("busUp") == -1 {
		t.Fatal("a slow bus is not a down bus")
	}
}

// slowBus holds every Send until release is closed, then succeeds: a bus
// that is slow, not down.
type slowBus struct {
	*inmem.Bus
	release chan struct{}
}

func (s *slowBus) Send(_ context.Context, msgs []sessions.Envelope) error {
	<-s.release
	return s.Bus.Send(context.Background(), msgs)
}
