package bench

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints one status line at a time while a run goes on.
type progress struct {
	w       io.Writer
	inPlace bool // a terminal: rewrite one line instead of adding lines
	label   string
	mu      sync.Mutex
	name    string
	joins   atomic.Int64
	want    int
	last    time.Time
	lastN   int64
	lastCPU time.Duration
	rate    float64
	gen     float64
}

func newProgress(cfg Config, kind string, lps int) *progress {
	return &progress{
		w:       cfg.Progress,
		inPlace: cfg.ProgressInPlace,
		label:   fmt.Sprintf("%s S=%d L=%d", kind, cfg.Speakers, lps),
		want:    cfg.Speakers*lps + cfg.Stalled,
	}
}

func (p *progress) phase(name string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	p.name = name
	p.mu.Unlock()
	p.print(nil)
}

func (p *progress) joined() { p.joins.Add(1) }

func (p *progress) tick(r *run) {
	if p == nil || p.w == nil {
		return
	}
	p.print(r)
}

func (p *progress) print(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("[%s] %s: joined %d/%d", p.label, p.name, p.joins.Load(), p.want)
	if r != nil {
		var total int64
		for _, l := range r.listeners {
			total += l.total.Load()
		}
		now, cpu := time.Now(), selfCPU()
		if !p.last.IsZero() {
			dt := now.Sub(p.last).Seconds()
			if dt > 0 {
				p.rate = float64(total-p.lastN) / dt
				p.gen = (cpu - p.lastCPU).Seconds() / dt
			}
		}
		p.last, p.lastN, p.lastCPU = now, total, cpu
		q := r.hist.merged().Quantiles(0.99)
		line += fmt.Sprintf(", %s frames/s, window p99 %.1f ms, generator %.2f cores", num(p.rate, 0), float64(q[0])/1e6, p.gen)
	}
	if p.inPlace {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) done() {
	if p == nil || p.w == nil {
		return
	}
	p.phase("done")
	if p.inPlace {
		fmt.Fprintln(p.w)
	}
}
