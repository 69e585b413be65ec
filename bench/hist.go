package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear, HDR-style: values (microseconds) below
// 2^subBits are exact; above, every power of two is split into 2^(subBits-1)
// equal buckets, so any recorded value is known to within 1/64 (1.6 %).
// Recording is one atomic add, so listener goroutines share a histogram
// without a lock.
const (
	subBits    = 7
	subCount   = 1 << subBits     // 128 exact values
	halfCount  = subCount / 2     // buckets per power of two above them
	histShifts = 64 - subBits + 1 // enough for any int64
	histLen    = subCount + histShifts*halfCount
)

// Histogram counts durations at microsecond resolution.
type Histogram struct {
	counts [histLen]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // microseconds
	max    atomic.Uint64 // microseconds
}

func bucketOf(us uint64) int {
	if us < subCount {
		return int(us)
	}
	shift := bits.Len64(us) - subBits // >= 1
	sub := us >> uint(shift)          // in [halfCount, subCount)
	return subCount + (shift-1)*halfCount + int(sub-halfCount)
}

// bucketRange is the inclusive range of values bucket i counts.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	i -= subCount
	shift := uint(i/halfCount + 1)
	sub := uint64(i%halfCount + halfCount)
	lo = sub << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one duration; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.RecordMicros(us)
}

// RecordMicros adds one value in microseconds.
func (h *Histogram) RecordMicros(us uint64) {
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Merge adds every count of o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// Quantiles returns the values at the quantiles qs (each in [0,1]); a value
// is the middle of its bucket, and the top quantile never exceeds the exact
// maximum.
func (h *Histogram) Quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	total := h.n.Load()
	if total == 0 {
		return out
	}
	max := h.max.Load()
	snap := make([]uint64, histLen)
	var seen uint64
	for i := range snap {
		snap[i] = h.counts[i].Load()
		seen += snap[i]
	}
	for qi, q := range qs {
		rank := uint64(math.Ceil(q * float64(seen)))
		if rank < 1 {
			rank = 1
		}
		var cum uint64
		for i, c := range snap {
			cum += c
			if cum >= rank {
				lo, hi := bucketRange(i)
				v := lo + (hi-lo)/2
				if v > max {
					v = max
				}
				out[qi] = time.Duration(v) * time.Microsecond
				break
			}
		}
	}
	return out
}

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Mean is the average recorded value.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// shardedHist spreads recording over several histograms so that listener
// goroutines on different cores rarely touch the same cache line.
type shardedHist struct {
	shards []*Histogram
}

func newShardedHist(n int) *shardedHist {
	s := &shardedHist{shards: make([]*Histogram, n)}
	for i := range s.shards {
		s.shards[i] = new(Histogram)
	}
	return s
}

func (s *shardedHist) shard(i int) *Histogram { return s.shards[i%len(s.shards)] }

func (s *shardedHist) merged() *Histogram {
	m := new(Histogram)
	for _, h := range s.shards {
		m.Merge(h)
	}
	return m
}
