package redis

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestPresenceCountsAcrossNodesAndForgetsDeadOnes(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	a := NewPresence(c, "aaaaaaaaaaaaaaaa", time.Minute, nil)
	b := NewPresence(c, "bbbbbbbbbbbbbbbb", 300*time.Millisecond, nil)
	if err := a.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	if err := b.beat(ctx); err != nil { // b beats once and then "crashes"
		t.Fatal(err)
	}
	for _, j := range []struct {
		p    *Presence
		lang string
		new  bool
	}{{a, "es", true}, {a, "es", false}, {b, "fr", true}, {b, "es", false}} {
		_, newLang, full, err := j.p.Join(ctx, "s", j.lang, 4, false)
		if err != nil || full || newLang != j.new {
			t.Fatalf("join %s: new %v full %v err %v", j.lang, newLang, full, err)
		}
	}
	if total, _, full, _ := a.Join(ctx, "s", "de", 4, false); !full || total != 4 {
		t.Fatalf("the cap of 4 across nodes: total %d full %v", total, full)
	}
	if _, _, full, _ := a.Join(ctx, "s", "de", 4, true); full {
		t.Fatal("a refresh may exceed the cap")
	}
	if err := a.Leave(ctx, "s", "de"); err != nil {
		t.Fatal(err)
	}
	total, by, err := a.Counts(ctx, "s")
	if err != nil || total != 4 || by["es"] != 3 || by["fr"] != 1 {
		t.Fatalf("counts %d %v %v", total, by, err)
	}
	// b's heartbeat expires: its listeners leave every count.
	deadline := time.Now().Add(5 * time.Second)
	for {
		total, by, _ = a.Counts(ctx, "s")
		if total == 2 && by["es"] == 2 && by["fr"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead node still counted: %d %v", total, by)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Reconcile replaces a's counts with the truth.
	if err := a.Reconcile(ctx, "s", map[string]int{"pt": 1}); err != nil {
		t.Fatal(err)
	}
	if total, by, _ = a.Counts(ctx, "s"); total != 1 || by["pt"] != 1 {
		t.Fatalf("after reconcile: %d %v", total, by)
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

func TestBusSequencesAcrossPublishers(t *testing.T) {
	c := testClient(t)
	got := make(chan []byte, 10)
	sub := NewBus(c, nil, func(topic string, msg []byte) {
		if topic == "s:audio" {
			got <- msg
		}
	})
	defer sub.Close()
	if err := sub.Subscribe(context.Background(), "s:audio"); err != nil {
		t.Fatal(err)
	}
	pubA := NewBus(c, nil, func(string, []byte) {})
	defer pubA.Close()
	msg := []byte("XXXXXXXXXXXXX\x00\x00\x00\x00tail")
	for i, floor := range []uint32{0, 0, 10, 0} {
		seq, err := pubA.PublishSequenced(context.Background(), "s:audio", msg, 13, floor)
		want := []uint32{0, 1, 10, 11}[i]
		if err != nil || seq != want {
			t.Fatalf("publish %d: seq %d err %v, want %d", i, seq, err, want)
		}
		select {
		case m := <-got:
			if string(m[:13]) != "XXXXXXXXXXXXX" || string(m[17:]) != "tail" ||
				uint32(m[13])<<24|uint32(m[14])<<16|uint32(m[15])<<8|uint32(m[16]) != want {
				t.Fatalf("message % x", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("message not delivered")
		}
	}
}
