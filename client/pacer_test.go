package client

import (
	"context"
	"testing"
	"time"
)

// fakeClock advances only when the Pacer waits, plus whatever work the
// test says each chunk took.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (f *fakeClock) Now() time.Time { return f.now }
func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.waits = append(f.waits, d)
	f.now = f.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- f.now
	return ch
}

func newFakePacer(interval time.Duration) (*Pacer, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	p := NewPacer(interval)
	p.Now, p.After = clk.Now, clk.After
	return p, clk
}

func TestPacerDoesNotDrift(t *testing.T) {
	ctx := context.Background()
	p, clk := newFakePacer(20 * time.Millisecond)
	start := clk.now
	work := []time.Duration{3, 17, 0, 19, 25, 1} // ms of work per chunk, one late
	for i := 0; i < 600; i++ {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if want := start.Add(time.Duration(i) * 20 * time.Millisecond); clk.now.Before(want) {
			t.Fatalf("chunk %d released at %v, before its slot %v", i, clk.now.Sub(start), want.Sub(start))
		}
		clk.now = clk.now.Add(work[i%len(work)] * time.Millisecond)
	}
	// 600 chunks of 20 ms: the 600th is released 11.98 s in, not later.
	if got := clk.now.Sub(start); got > 600*20*time.Millisecond+25*time.Millisecond {
		t.Errorf("600 chunks took %v: the schedule drifted", got)
	}
}

func TestPacerRestartsAfterLongStall(t *testing.T) {
	ctx := context.Background()
	p, clk := newFakePacer(20 * time.Millisecond)
	for range 3 {
		p.Wait(ctx)
	}
	clk.now = clk.now.Add(5 * time.Second) // a reconnect
	n := len(clk.waits)
	p.Wait(ctx) // released at once
	p.Wait(ctx) // then one interval later, no burst
	if len(clk.waits) != n+1 || clk.waits[n] != 20*time.Millisecond {
		t.Errorf("after a stall, waits %v; want one 20ms wait", clk.waits[n:])
	}
}

func TestPacerCancel(t *testing.T) {
	p := NewPacer(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := p.Wait(ctx); err != context.Canceled {
		t.Errorf("Wait after cancel: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	limits := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, l := range limits {
		d := b.Next()
		if max := l * time.Millisecond; d < max/2 || d > max {
			t.Errorf("attempt %d: %v outside [%v, %v]", i, d, max/2, max)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
}
