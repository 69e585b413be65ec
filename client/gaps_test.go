package client

import (
	"math"
	"testing"
)

func TestGapTracker(t *testing.T) {
	var g GapTracker
	type step struct {
		seq  uint32
		v    Verdict
		from uint32
		to   uint32 // from..to is the gap; to < from means none
	}
	steps := []step{
		{100, New, 1, 0},
		{101, New, 1, 0},
		{101, Duplicate, 1, 0},
		{102, New, 1, 0},
		{106, New, 103, 105},
		{104, Late, 1, 0},
		{104, Duplicate, 1, 0},
		{100, Duplicate, 1, 0},
		{107, New, 1, 0},
		{109, New, 108, 108},
	}
	for i, s := range steps {
		v, gap := g.Observe(s.seq)
		if v != s.v {
			t.Fatalf("step %d seq %d: %v, want %v", i, s.seq, v, s.v)
		}
		switch {
		case s.to < s.from && gap != nil:
			t.Fatalf("step %d seq %d: unexpected %v", i, s.seq, gap)
		case s.to >= s.from && (gap == nil || gap.From != s.from || gap.To != s.to):
			t.Fatalf("step %d seq %d: gap %v, want %d..%d", i, s.seq, gap, s.from, s.to)
		}
	}
	want := GapStats{Received: 6, Duplicates: 3, Late: 1, Gaps: 2, Missing: 4}
	if got := g.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if next, ok := g.Next(); !ok || next != 110 {
		t.Errorf("Next %d %v", next, ok)
	}
}

func TestGapTrackerWrapAround(t *testing.T) {
	var g GapTracker
	g.Observe(math.MaxUint32 - 1)
	if v, gap := g.Observe(math.MaxUint32); v != New || gap != nil {
		t.Fatalf("max: %v %v", v, gap)
	}
	if v, gap := g.Observe(0); v != New || gap != nil {
		t.Fatalf("wrap to 0: %v %v", v, gap)
	}
	if v, _ := g.Observe(math.MaxUint32); v != Duplicate {
		t.Fatalf("max again after the wrap: %v", v)
	}
	v, gap := g.Observe(3)
	if v != New || gap == nil || gap.From != 1 || gap.To != 2 || gap.Missing() != 2 {
		t.Fatalf("gap after wrap: %v %v", v, gap)
	}
	var h GapTracker
	h.Observe(math.MaxUint32 - 1)
	_, gap = h.Observe(1)
	if gap == nil || gap.From != math.MaxUint32 || gap.To != 0 || gap.Missing() != 2 {
		t.Fatalf("gap across the wrap: %v", gap)
	}
	if gap.String() != "gap: 2 chunks missing (seq 4294967295..0)" {
		t.Errorf("String %q", gap.String())
	}
}

func TestGapTrackerWindowAndRestarts(t *testing.T) {
	var g GapTracker
	for s := uint32(0); s < 3000; s++ {
		if v, gap := g.Observe(s); v != New || gap != nil {
			t.Fatalf("seq %d: %v %v", s, v, gap)
		}
	}
	if v, _ := g.Observe(3000 - window); v != Duplicate {
		t.Errorf("oldest in the window: %v", v)
	}
	// Beyond the window back: a new stream, not a late chunk.
	if v, gap := g.Observe(5); v != New || gap != nil {
		t.Errorf("far back: %v %v", v, gap)
	}
	if v, gap := g.Observe(6); v != New || gap != nil {
		t.Errorf("after restart: %v %v", v, gap)
	}
	// A forward jump past MaxGap is a restart too.
	g.MaxGap = 100
	if v, gap := g.Observe(1000); v != New || gap != nil {
		t.Errorf("far forward: %v %v", v, gap)
	}
	if st := g.Stats(); st.Restarts != 2 || st.Gaps != 0 {
		t.Errorf("stats %+v", st)
	}
	// A gap longer than the window clears it: nothing old is a duplicate.
	g.MaxGap = 0
	g.Observe(1000 + 2*window)
	if v, _ := g.Observe(1000 + 2*window - 5); v != Late {
		t.Errorf("inside a long gap: %v, want late", v)
	}
	g.Reset()
	if v, gap := g.Observe(1); v != New || gap != nil {
		t.Errorf("after Reset: %v %v", v, gap)
	}
}
