package hub

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func audio(b byte) *Message { return NewAudio(true, []byte{b}) }

// made returns an audio message made at t, as if the room had made it then.
func made(b byte, t time.Time) *Message {
	m := audio(b)
	m.born = t
	return m
}

func TestQueueDropsOldestAudioKeepsControl(t *testing.T) {
	q := NewQueue(QueueOptions{MaxAudio: 3})
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

// A connection is slow when the oldest message it has not written has
// waited past the bound, however many chunks that is; drops made to keep the
// queue bounded do not reset the clock, a write does.
func TestQueueStallIsTheAgeOfTheOldestUnwritten(t *testing.T) {
	var fired []time.Duration
	q := NewQueue(QueueOptions{MaxAudio: 2, StallTimeout: 10 * time.Second, OnSlow: func(d time.Duration) { fired = append(fired, d) }})
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	q.Push(made(1, at(0)))
	q.Take(nil)                                        // written at once: the clock restarts at the next message
	for i, s := range []float64{1, 2, 3, 4, 9, 10.5} { // drops from the third on
		q.Push(made(byte(i), at(s)))
	}
	if len(fired) != 0 {
		t.Fatalf("slow after %v although the oldest unwritten message waited 9.5 s", fired)
	}
	if ok, _ := q.Push(made(9, at(11.5))); !ok || len(fired) != 1 || fired[0] != 10500*time.Millisecond {
		t.Fatalf("push at 11.5 s: queued %v, fired %v; want slow after 10.5 s", ok, fired)
	}
	if q.Len() != 0 {
		t.Fatalf("%d audio messages kept for a slow connection", q.Len())
	}
	if ok, _ := q.Push(made(10, at(12))); ok {
		t.Fatal("audio queued for a slow connection")
	}
	if ok, _ := q.Push(NewControl([]byte("c"))); !ok || q.Len() != 1 {
		t.Fatal("a control message was refused for a slow connection")
	}
	q.Push(made(11, at(30)))
	if len(fired) != 1 {
		t.Fatalf("OnSlow fired %d times, want once", len(fired))
	}
}

func TestQueueControlFloodIsSlow(t *testing.T) {
	var fired atomic.Int32
	q := NewQueue(QueueOptions{MaxControl: 4, OnSlow: func(time.Duration) { fired.Add(1) }})
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

func TestQueueStopped(t *testing.T) {
	q := NewQueue(QueueOptions{})
	q.Stop()
	if ok, _ := q.Push(NewControl(nil)); ok {
		t.Fatal("push after stop")
	}
}

// fakeLink records what the writer hands the socket; a write can be held.
type fakeLink struct {
	mu        sync.Mutex
	writes    [][]byte // each write's frames, concatenated
	deadlines []time.Time
	hold      chan struct{} // when set, each write waits for it
	fail      error
	done      chan error
}

func newFakeLink() *fakeLink { return &fakeLink{done: make(chan error, 1)} }

func (l *fakeLink) WriteFrames(frames [][]byte, deadline time.Time) error {
	if l.hold != nil {
		<-l.hold
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, bytes.Join(frames, nil))
	l.deadlines = append(l.deadlines, deadline)
	return l.fail
}

func (l *fakeLink) WriterDone(err error) { l.done <- err }

func (l *fakeLink) snapshot() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.writes...)
}

// One write carries everything that waited: the queued messages in order,
// then the close frame; the writer then reports the close as sent.
func TestQueueWritesBatchThenClose(t *testing.T) {
	l := newFakeLink()
	l.hold = make(chan struct{})
	var written atomic.Int32
	q := NewQueue(QueueOptions{OnWrite: func(m, a int) { written.Add(int32(m)) }})
	q.Attach(l)
	first := NewControl([]byte("first"))
	q.Push(first) // starts the writer, which blocks in the first write
	waitFor(t, func() bool { return q.Len() == 0 })
	a, b := audio(7), NewControl([]byte("last"))
	q.Push(a)
	q.Push(b)
	q.Close(4008, "slowConsumer")
	close(l.hold)
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatalf("writer done with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the close frame was never written")
	}
	<-q.Done()
	w := l.snapshot()
	want := [][]byte{first.Wire(), bytes.Join([][]byte{a.Wire(), b.Wire(), closeFrame(4008, "slowConsumer")}, nil)}
	if len(w) != 2 || !bytes.Equal(w[0], want[0]) || !bytes.Equal(w[1], want[1]) {
		t.Fatalf("writes:\n% x\nwant\n% x", w, want)
	}
	if written.Load() != 3 {
		t.Fatalf("OnWrite counted %d messages, want 3", written.Load())
	}
	if ok, _ := q.Push(NewControl(nil)); ok {
		t.Fatal("a message was queued after the close frame")
	}
}

// Pings and pongs go out at once, ahead of what waits; a failed write ends
// the writer and reports the error.
func TestQueuePingPongAndWriteFailure(t *testing.T) {
	l := newFakeLink()
	q := NewQueue(QueueOptions{})
	q.Attach(l)
	q.Pong([]byte("hi"))
	waitFor(t, func() bool { return len(l.snapshot()) == 1 })
	if w := l.snapshot()[0]; !bytes.Equal(w, controlFrame(opPong, []byte("hi"))) {
		t.Fatalf("pong write % x", w)
	}
	l.mu.Lock()
	l.fail = errors.New("broken pipe")
	l.mu.Unlock()
	q.Ping()
	select {
	case err := <-l.done:
		if err == nil || err.Error() != "broken pipe" {
			t.Fatalf("writer done with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failed write did not end the writer")
	}
	<-q.Done()
	if w := l.snapshot(); len(w) != 2 || !bytes.Equal(w[1], pingFrame) {
		t.Fatalf("writes % x", w)
	}
}

// The write deadline never falls before the stall bound of the oldest
// message (so a stalled listener is told before its socket is cut), is moved
// only when less than half its margin is left, and once the connection is
// slow it only stands.
func TestQueueDeadline(t *testing.T) {
	q := NewQueue(QueueOptions{StallTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	t0 := time.Now()
	s := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	for _, c := range []struct {
		name             string
		cur, oldest, now time.Time
		slow             bool
		want             time.Time
	}{
		{"first write", time.Time{}, s(0), s(0), false, s(20)},
		{"half the margin left", s(20), s(3), s(4), false, s(20)},
		{"less than half left", s(20), s(6), s(7), false, s(26)},
		{"only a pong", s(20), time.Time{}, s(30), false, s(50)},
		{"slow: the deadline stands", s(20), s(1), s(12), true, s(20)},
		{"slow on a fresh writer", time.Time{}, s(1), s(12), true, s(22)},
	} {
		if got := q.deadline(c.cur, c.oldest, c.now, c.slow); !got.Equal(c.want) {
			t.Errorf("%s: deadline at %v, want %v", c.name, got.Sub(t0), c.want.Sub(t0))
		}
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// --write-coalesce holds messages on purpose: that wait is not a stall.
func TestQueueStallAllowsForCoalescing(t *testing.T) {
	fired := 0
	q := NewQueue(QueueOptions{StallTimeout: 10 * time.Second, Coalesce: 5 * time.Second, OnSlow: func(time.Duration) { fired++ }})
	t0 := time.Now()
	q.Push(made(1, t0))
	q.Push(made(2, t0.Add(14*time.Second)))
	if fired != 0 {
		t.Fatal("slow within the bound plus the coalescing window")
	}
	q.Push(made(3, t0.Add(15500*time.Millisecond)))
	if fired != 1 {
		t.Fatal("not slow past the bound plus the coalescing window")
	}
}
