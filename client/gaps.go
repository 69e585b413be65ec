package client

import "fmt"

// Verdict is what GapTracker.Observe made of a sequence number.
type Verdict int

const (
	// New: first time seen, at or after the expected number.
	New Verdict = iota
	// Duplicate: seen before, e.g. on both connections of a refresh.
	Duplicate
	// Late: a number reported missing that arrived after later ones; too
	// late to play in order.
	Late
)

func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Gap is a run of missing sequence numbers, From to To inclusive.
type Gap struct{ From, To uint32 }

// Missing is the number of chunks in the gap.
func (g Gap) Missing() int64 { return int64(g.To-g.From) + 1 }

func (g Gap) String() string {
	if g.From == g.To {
		return fmt.Sprintf("gap: 1 chunk missing (seq %d)", g.From)
	}
	return fmt.Sprintf("gap: %d chunks missing (seq %d..%d)", g.Missing(), g.From, g.To)
}

// GapStats are a GapTracker's counts.
type GapStats struct {
	Received   int64 // new chunks
	Duplicates int64
	Late       int64
	Gaps       int64 // runs of missing chunks
	Missing    int64 // chunks in those runs
	Restarts   int64 // sequence jumps too large to be gaps: a new stream
}

// GapTracker follows the sequence numbers of one audio stream (docs/protocol.md
// section 5) and classifies each chunk: new, duplicate, or late, and reports
// the gaps before new ones. Numbers compare in serial arithmetic, so the
// uint32 wrap-around is a step like any other.
//
// A jump back by more than the duplicate window, or forward by more than
// MaxGap, is taken as a new stream (the server restarted it, or the listener
// moved to another language's stream) rather than a giant gap. Callers that
// know the stream changed call Reset.
//
// The zero value is ready; it is not safe for concurrent use.
type GapTracker struct {
	// MaxGap is the largest forward jump counted as a gap; 0 means
	// DefaultMaxGap.
	MaxGap uint32

	started bool
	next    uint32 // the number expected next: one past the highest seen
	seen    [window / 64]uint64
	stats   GapStats
}

// window is how far back duplicates are recognised: 1024 chunks, 20 s of
// 20 ms chunks (61 s of 60 ms Opus packets), far more than a refresh
// overlap. The tracker counts chunks whatever their duration; what a gap
// means in time is the Decoder's business (Conceal).
const window = 1024

// DefaultMaxGap is an hour of 20 ms chunks (three of 60 ms packets).
const DefaultMaxGap = 180000

// Observe records one chunk's sequence number. gap is non-nil when seq is
// new and numbers before it were skipped.
func (t *GapTracker) Observe(seq uint32) (v Verdict, gap *Gap) {
	if !t.started {
		t.start(seq)
		return New, nil
	}
	maxGap := t.MaxGap
	if maxGap == 0 {
		maxGap = DefaultMaxGap
	}
	ahead := seq - t.next // serial distance forward, mod 2^32
	switch {
	case ahead == 0:
		t.advance(seq)
		return New, nil
	case ahead <= maxGap:
		g := Gap{From: t.next, To: seq - 1}
		t.stats.Gaps++
		t.stats.Missing += g.Missing()
		t.advance(seq)
		return New, &g
	}
	behind := t.next - seq // 1 for the last number seen
	if behind <= window {
		if t.isSeen(seq) {
			t.stats.Duplicates++
			return Duplicate, nil
		}
		t.mark(seq)
		t.stats.Late++
		return Late, nil
	}
	t.stats.Restarts++
	t.start(seq)
	return New, nil
}

// Reset forgets the stream; the next number starts a new one. Counts are kept.
func (t *GapTracker) Reset() {
	t.started = false
}

// Stats returns the counts so far.
func (t *GapTracker) Stats() GapStats { return t.stats }

// Next is the sequence number expected next, and whether any was seen.
func (t *GapTracker) Next() (uint32, bool) { return t.next, t.started }

func (t *GapTracker) start(seq uint32) {
	t.started = true
	t.seen = [window / 64]uint64{}
	t.next = seq
	t.advance(seq)
}

// advance moves the window to end just after seq, clearing the slots the
// skipped numbers reuse, and marks seq.
func (t *GapTracker) advance(seq uint32) {
	if seq-t.next >= window {
		t.seen = [window / 64]uint64{}
	} else {
		for s := t.next; s != seq; s++ {
			t.seen[(s%window)/64] &^= 1 << (s % 64)
		}
	}
	t.mark(seq)
	t.next = seq + 1
	t.stats.Received++
}

func (t *GapTracker) mark(seq uint32)        { t.seen[(seq%window)/64] |= 1 << (seq % 64) }
func (t *GapTracker) isSeen(seq uint32) bool { return t.seen[(seq%window)/64]&(1<<(seq%64)) != 0 }
