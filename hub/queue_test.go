package hub

import (
	"sync/atomic"
	"testing"
)

func audio(b byte) *Message { return NewAudio(true, []byte{b}) }

func TestQueueDropsOldestAudioKeepsControl(t *testing.T) {
	q := NewQueue(QueueOptions{MaxAudio: 3, SlowAfter: 100})
	ctl := NewControl([]byte(`{"type":"broadcastPaused"}`))
	q.Push(audio(1))
	q.Push(ctl)
	for b := byte(2); b <= 5; b++ {
		q.Push(audio(b))
	}
	got := q.Take(nil)
	var seen []byte
	controls := 0
	for _, m := range got {
		if m.Audio {
			seen = append(seen, m.Payload[0])
		} else {
			controls++
		}
	}
	if string(seen) != string([]byte{3, 4, 5}) || controls != 1 {
		t.Fatalf("kept audio %v and %d control messages; want [3 4 5] and 1", seen, controls)
	}
	if q.Dropped() != 2 {
		t.Fatalf("dropped = %d, want 2", q.Dropped())
	}
	if q.Len() != 0 {
		t.Fatalf("Take left %d", q.Len())
	}
}

func TestQueueSlowFiresOnceAndResetsOnWrite(t *testing.T) {
	var fired atomic.Int32
	q := NewQueue(QueueOptions{MaxAudio: 2, SlowAfter: 3, OnSlow: func() { fired.Add(1) }})
	for i := 0; i < 5; i++ { // 3 drops: not yet slow
		q.Push(audio(byte(i)))
	}
	q.Take(nil)
	q.Wrote()
	for i := 0; i < 5; i++ { // 3 more drops after the write: still not over the bound
		q.Push(audio(byte(i)))
	}
	if fired.Load() != 0 {
		t.Fatal("slow fired although the listener wrote in between")
	}
	for i := 0; i < 10; i++ {
		q.Push(audio(byte(i)))
	}
	if fired.Load() != 1 {
		t.Fatalf("OnSlow fired %d times, want 1", fired.Load())
	}
}

func TestQueueControlFloodIsSlow(t *testing.T) {
	var fired atomic.Int32
	q := NewQueue(QueueOptions{MaxControl: 4, OnSlow: func() { fired.Add(1) }})
	for i := 0; i < 5; i++ {
		q.Push(NewControl([]byte("x")))
	}
	if fired.Load() != 1 || q.Len() != 5 {
		t.Fatalf("fired %d, len %d: control messages must never be dropped, only flagged", fired.Load(), q.Len())
	}
}

func TestQueuePausedAudio(t *testing.T) {
	q := NewQueue(QueueOptions{})
	q.Push(audio(1))
	q.SetAudioPaused(true)
	if ok, _ := q.Push(audio(2)); ok {
		t.Fatal("audio queued while paused")
	}
	q.Push(NewControl([]byte("c")))
	got := q.Take(nil)
	if len(got) != 1 || got[0].Audio {
		t.Fatalf("want only the control message, got %d", len(got))
	}
	q.SetAudioPaused(false)
	if ok, _ := q.Push(audio(3)); !ok {
		t.Fatal("audio refused after resume")
	}
}

func TestQueueClosed(t *testing.T) {
	q := NewQueue(QueueOptions{})
	q.Close()
	if ok, _ := q.Push(NewControl(nil)); ok {
		t.Fatal("push after close")
	}
}

func TestMessageWireOnce(t *testing.T) {
	m := NewAudio(true, []byte("abc"))
	calls := 0
	f := func(m *Message) []byte { calls++; return append([]byte{0}, m.Payload...) }
	a, b := m.Wire(f), m.Wire(f)
	if calls != 1 || &a[0] != &b[0] {
		t.Fatalf("framed %d times", calls)
	}
}
