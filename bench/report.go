package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run against one server. Durations are in
// milliseconds (keys ending in _ms); figures the run could not measure are
// omitted (nil).
type Report struct {
	Target     string `json:"target"`      // pentecost or baseline
	ServerMode string `json:"server_mode"` // child, in-process or external

	Speakers            int     `json:"speakers"`
	ListenersPerSession int     `json:"listeners_per_session"`
	Languages           int     `json:"languages"`
	Listeners           int     `json:"listeners"` // joined in time and measured
	Stalled             int     `json:"stalled_listeners"`
	Codec               string  `json:"codec"`          // what the speakers send
	ListenerCodec       string  `json:"listener_codec"` // what the listeners receive (the server converts when it differs)
	PacketMs            int     `json:"packet_ms,omitempty"`
	ChunkBytes          int     `json:"chunk_bytes"` // opus: the mean packet
	ChunkIntervalMs     float64 `json:"chunk_interval_ms"`
	WindowMs            float64 `json:"window_ms"`
	WarmupMs            float64 `json:"warmup_ms"`
	JoinStormMs         float64 `json:"join_storm_ms,omitempty"`

	OfferedPerSec   float64 `json:"offered_frames_per_sec"`
	SentChunks      int64   `json:"sent_chunks"`
	ExpectedFrames  int64   `json:"expected_frames"`
	DeliveredFrames int64   `json:"delivered_frames"`
	DeliveredPerSec float64 `json:"delivered_frames_per_sec"`
	LostFrames      int64   `json:"lost_frames"`
	LossRatio       float64 `json:"loss_ratio"`
	SeqGaps         int64   `json:"sequence_gaps"`
	UnknownSeq      int64   `json:"unknown_sequence_numbers,omitempty"`
	// ListenerKbps is what one listener receives: the WebSocket frames of
	// the chunks due inside the window and the other frames read inside it
	// (audio headers, WebSocket framing and any other message included) per
	// second, x 8 / 1000, averaged over the measured listeners.
	ListenerKbps float64 `json:"listener_kbps"`
	ServerDrops  *int64  `json:"server_drops,omitempty"`
	SpeakerLate  int64   `json:"speaker_late_chunks"`

	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyP999Ms float64 `json:"latency_p999_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	LatencyMeanMs float64 `json:"latency_mean_ms"`

	Disconnected  map[string]int `json:"listeners_disconnected,omitempty"` // by close code, during the run
	StalledClosed map[string]int `json:"stalled_outcome,omitempty"`        // stalled listeners at the end: close code, "closed" or "open"

	Joins        int            `json:"joins"`
	JoinFailures int            `json:"join_failures"`
	JoinErrors   map[string]int `json:"join_errors,omitempty"`
	LateJoins    int            `json:"late_joins,omitempty"` // joined after the window opened: not measured
	JoinP50Ms    float64        `json:"join_p50_ms"`
	JoinP99Ms    float64        `json:"join_p99_ms"`
	JoinMaxMs    float64        `json:"join_max_ms"`

	FramesPerWrite       *float64 `json:"frames_per_write,omitempty"` // messages per socket write, from the server's metrics
	ServerCPUMs          *float64 `json:"server_cpu_ms,omitempty"`    // CPU time in the window
	ServerCPUCores       *float64 `json:"server_cpu_cores,omitempty"`
	ServerCPUPerMillion  *float64 `json:"server_cpu_seconds_per_million_frames,omitempty"`
	ServerWrittenPerSec  *float64 `json:"server_frames_written_per_sec,omitempty"` // the CPU figure's denominator
	ServerRSSStartMB     *float64 `json:"server_rss_start_mb,omitempty"`
	ServerRSSIdleMB      *float64 `json:"server_rss_idle_mb,omitempty"`
	ServerRSSLoadMB      *float64 `json:"server_rss_load_mb,omitempty"`
	RSSIdlePerConnKB     *float64 `json:"rss_idle_per_conn_kb,omitempty"`
	RSSLoadPerConnKB     *float64 `json:"rss_load_per_conn_kb,omitempty"`
	GoMemIdlePerConnKB   *float64 `json:"go_heap_stack_idle_per_conn_kb,omitempty"`
	GoMemLoadPerConnKB   *float64 `json:"go_heap_stack_load_per_conn_kb,omitempty"`
	GoroutinesPerConn    *float64 `json:"goroutines_per_conn,omitempty"`
	GoroutinesPerConnRun *float64 `json:"goroutines_per_conn_load,omitempty"`

	GeneratorCPUCores      float64  `json:"generator_cpu_cores"`
	GeneratorCPUPerMillion float64  `json:"generator_cpu_seconds_per_million_frames"`
	SoftirqCPUCores        *float64 `json:"softirq_cpu_cores,omitempty"` // kernel network work, machine-wide (mostly inside the server's and generator's times)
	OtherCPUCores          *float64 `json:"other_cpu_cores,omitempty"`   // every other process, during the window
	MachineCores           int      `json:"machine_cores"`
	GeneratorLimited       bool     `json:"generator_limited"`

	Warnings []string `json:"warnings,omitempty"`
}

// Ratios are Pentecost's figures divided by the baseline's from the same
// invocation: below 1 is better for latency, CPU and memory, above 1 better
// for delivered frames.
type Ratios struct {
	DeliveredPerSec     *float64 `json:"delivered_frames_per_sec,omitempty"`
	LatencyP50          *float64 `json:"latency_p50,omitempty"`
	LatencyP99          *float64 `json:"latency_p99,omitempty"`
	LatencyP999         *float64 `json:"latency_p999,omitempty"`
	JoinP99             *float64 `json:"join_p99,omitempty"`
	ServerCPUPerMillion *float64 `json:"server_cpu_per_million_frames,omitempty"`
	RSSIdlePerConn      *float64 `json:"rss_idle_per_conn,omitempty"`
	RSSLoadPerConn      *float64 `json:"rss_load_per_conn,omitempty"`
	GoMemIdlePerConn    *float64 `json:"go_heap_stack_idle_per_conn,omitempty"`
	GoroutinesPerConn   *float64 `json:"goroutines_per_conn,omitempty"`
	MaxListeners        *float64 `json:"max_listeners,omitempty"`
}

// Step is one find-max step.
type Step struct {
	ListenersPerSession int     `json:"listeners_per_session"`
	Listeners           int     `json:"listeners"`
	OK                  bool    `json:"ok"`
	Tries               int     `json:"tries"` // runs it took (a pass on any try counts: noise only hurts)
	Why                 string  `json:"why,omitempty"`
	Report              *Report `json:"report"`
}

// MaxResult is the outcome of find-max against one server.
type MaxResult struct {
	MaxListenersPerSession int     `json:"max_listeners_per_session"`
	MaxListeners           int     `json:"max_listeners"` // all sessions
	BoundP99Ms             float64 `json:"bound_p99_ms"`
	Steps                  []Step  `json:"steps"`
	Best                   *Report `json:"best,omitempty"`
}

// Result is everything one invocation measured.
type Result struct {
	Pentecost     *Report    `json:"pentecost,omitempty"`
	Baseline      *Report    `json:"baseline,omitempty"`
	Ratios        *Ratios    `json:"ratios,omitempty"`
	RunsPentecost []*Report  `json:"runs_pentecost,omitempty"` // every run when repeated
	RunsBaseline  []*Report  `json:"runs_baseline,omitempty"`
	MaxPentecost  *MaxResult `json:"find_max_pentecost,omitempty"`
	MaxBaseline   *MaxResult `json:"find_max_baseline,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	ElapsedMs     float64    `json:"elapsed_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

func ptr(v float64) *float64 { return &v }

func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	return ptr(round3(*a / *b))
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func computeRatios(p, b *Report) *Ratios {
	if p == nil || b == nil {
		return nil
	}
	f := func(v float64) *float64 { return &v }
	return &Ratios{
		DeliveredPerSec:     ratio(f(p.DeliveredPerSec), f(b.DeliveredPerSec)),
		LatencyP50:          ratio(f(p.LatencyP50Ms), f(b.LatencyP50Ms)),
		LatencyP99:          ratio(f(p.LatencyP99Ms), f(b.LatencyP99Ms)),
		LatencyP999:         ratio(f(p.LatencyP999Ms), f(b.LatencyP999Ms)),
		JoinP99:             ratio(f(p.JoinP99Ms), f(b.JoinP99Ms)),
		ServerCPUPerMillion: ratio(p.ServerCPUPerMillion, b.ServerCPUPerMillion),
		RSSIdlePerConn:      ratio(p.RSSIdlePerConnKB, b.RSSIdlePerConnKB),
		RSSLoadPerConn:      ratio(p.RSSLoadPerConnKB, b.RSSLoadPerConnKB),
		GoMemIdlePerConn:    ratio(p.GoMemIdlePerConnKB, b.GoMemIdlePerConnKB),
		GoroutinesPerConn:   ratio(p.GoroutinesPerConn, b.GoroutinesPerConn),
	}
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type row struct {
	name string
	p    func(*Report) string
	r    func(*Ratios) *float64
}

func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	s := fmt.Sprintf("%.*f", prec, v)
	if prec == 0 {
		return group(s)
	}
	return s
}

func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func opt(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return num(*v, prec)
}

func tableRows() []row {
	f := func(get func(*Report) string) func(*Report) string { return get }
	return []row{
		{"listeners measured (stalled)", f(func(r *Report) string {
			return fmt.Sprintf("%s (%d)", group(fmt.Sprint(r.Listeners)), r.Stalled)
		}), nil},
		{"offered frames/s", f(func(r *Report) string { return num(r.OfferedPerSec, 0) }), nil},
		{"delivered frames/s", f(func(r *Report) string { return num(r.DeliveredPerSec, 0) }), func(x *Ratios) *float64 { return x.DeliveredPerSec }},
		{"latency p50 ms", f(func(r *Report) string { return num(r.LatencyP50Ms, 2) }), func(x *Ratios) *float64 { return x.LatencyP50 }},
		{"latency p99 ms", f(func(r *Report) string { return num(r.LatencyP99Ms, 2) }), func(x *Ratios) *float64 { return x.LatencyP99 }},
		{"latency p99.9 ms", f(func(r *Report) string { return num(r.LatencyP999Ms, 2) }), func(x *Ratios) *float64 { return x.LatencyP999 }},
		{"latency max ms", f(func(r *Report) string { return num(r.LatencyMaxMs, 2) }), nil},
		{"lost frames (loss)", f(func(r *Report) string {
			return fmt.Sprintf("%s (%.4f%%)", group(fmt.Sprint(r.LostFrames)), 100*r.LossRatio)
		}), nil},
		{"sequence gaps", f(func(r *Report) string { return group(fmt.Sprint(r.SeqGaps)) }), nil},
		{"listener kbit/s", f(func(r *Report) string { return num(r.ListenerKbps, 1) }), nil},
		{"server drops", f(func(r *Report) string {
			if r.ServerDrops == nil {
				return "-"
			}
			return group(fmt.Sprint(*r.ServerDrops))
		}), nil},
		{"listeners disconnected", f(func(r *Report) string {
			n := 0
			for _, c := range r.Disconnected {
				n += c
			}
			return group(fmt.Sprint(n))
		}), nil},
		{"stalled listeners at the end", f(func(r *Report) string {
			if len(r.StalledClosed) == 0 {
				return "-"
			}
			keys := make([]string, 0, len(r.StalledClosed))
			for k := range r.StalledClosed {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s x%d", k, r.StalledClosed[k]))
			}
			return strings.Join(parts, ", ")
		}), nil},
		{"joins ok / failed", f(func(r *Report) string { return fmt.Sprintf("%d / %d", r.Joins-r.JoinFailures, r.JoinFailures) }), nil},
		{"join p50 / p99 / max ms", f(func(r *Report) string {
			return fmt.Sprintf("%s / %s / %s", num(r.JoinP50Ms, 1), num(r.JoinP99Ms, 1), num(r.JoinMaxMs, 1))
		}), func(x *Ratios) *float64 { return x.JoinP99 }},
		{"frames per write(2)", f(func(r *Report) string {
			if r.Target == KindBaseline {
				return "1 (by design)"
			}
			return opt(r.FramesPerWrite, 2)
		}), nil},
		{"server CPU cores", f(func(r *Report) string { return opt(r.ServerCPUCores, 2) }), nil},
		{"server CPU s / M frames", f(func(r *Report) string { return opt(r.ServerCPUPerMillion, 2) }), func(x *Ratios) *float64 { return x.ServerCPUPerMillion }},
		{"server RSS start / idle / load MB", f(func(r *Report) string {
			return fmt.Sprintf("%s / %s / %s", opt(r.ServerRSSStartMB, 1), opt(r.ServerRSSIdleMB, 1), opt(r.ServerRSSLoadMB, 1))
		}), nil},
		{"RSS per conn idle KB", f(func(r *Report) string { return opt(r.RSSIdlePerConnKB, 1) }), func(x *Ratios) *float64 { return x.RSSIdlePerConn }},
		{"RSS per conn load KB", f(func(r *Report) string { return opt(r.RSSLoadPerConnKB, 1) }), func(x *Ratios) *float64 { return x.RSSLoadPerConn }},
		{"Go heap+stack per conn idle KB", f(func(r *Report) string { return opt(r.GoMemIdlePerConnKB, 1) }), func(x *Ratios) *float64 { return x.GoMemIdlePerConn }},
		{"goroutines per conn", f(func(r *Report) string { return opt(r.GoroutinesPerConn, 2) }), func(x *Ratios) *float64 { return x.GoroutinesPerConn }},
		{"generator CPU cores", f(func(r *Report) string {
			s := num(r.GeneratorCPUCores, 2)
			if r.GeneratorLimited {
				s += " (LIMIT)"
			}
			return s
		}), nil},
		{"softirq cores (machine; inside the above)", f(func(r *Report) string { return opt(r.SoftirqCPUCores, 2) }), nil},
		{"other processes CPU cores", f(func(r *Report) string { return opt(r.OtherCPUCores, 2) }), nil},
	}
}

// WriteTable writes r as a human-readable table.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if p := first(r.Pentecost, r.Baseline); p != nil {
		size := fmt.Sprintf("%d B", p.ChunkBytes)
		if p.Codec == "opus" {
			size = fmt.Sprintf("opus packets of %d ms (%d B on average)", p.PacketMs, p.ChunkBytes)
		}
		fmt.Fprintf(w, "workload: %d speaker(s) x %d listeners/session over %d language(s), %s every %s, window %s after %s warm-up",
			p.Speakers, p.ListenersPerSession, p.Languages, size, dur(p.ChunkIntervalMs), dur(p.WindowMs), dur(p.WarmupMs))
		if p.JoinStormMs > 0 {
			fmt.Fprintf(w, ", join storm over %s", dur(p.JoinStormMs))
		}
		if p.ListenerCodec != "" && p.ListenerCodec != p.Codec {
			fmt.Fprintf(w, ", listeners take %s (the server converts)", p.ListenerCodec)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
		var cols []*Report
		head := "\t"
		for _, c := range []*Report{r.Pentecost, r.Baseline} {
			if c != nil {
				cols = append(cols, c)
				head += c.Target + " (" + c.ServerMode + ")\t"
			}
		}
		if r.Ratios != nil {
			head += "ratio\t"
		}
		fmt.Fprintln(tw, head)
		for _, rw := range tableRows() {
			line := rw.name + "\t"
			for _, c := range cols {
				line += rw.p(c) + "\t"
			}
			if r.Ratios != nil {
				if rw.r != nil {
					line += opt(rw.r(r.Ratios), 2) + "\t"
				} else {
					line += "\t"
				}
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range cols {
			for _, wn := range c.Warnings {
				fmt.Fprintf(w, "warning (%s): %s\n", c.Target, wn)
			}
		}
	}
	for _, runs := range [][]*Report{r.RunsPentecost, r.RunsBaseline} {
		if len(runs) < 2 {
			continue
		}
		fmt.Fprintf(w, "\n%s: %d runs (the table shows the one with the median p99):\n", runs[0].Target, len(runs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "run\tdelivered/s\tp50 ms\tp99 ms\tp99.9 ms\tlost\tserver CPU\tCPU s/M\tgen CPU\tother CPU\t")
		for i, rp := range runs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", i+1, num(rp.DeliveredPerSec, 0), num(rp.LatencyP50Ms, 1),
				num(rp.LatencyP99Ms, 1), num(rp.LatencyP999Ms, 1), rp.LostFrames, opt(rp.ServerCPUCores, 2),
				opt(rp.ServerCPUPerMillion, 2), num(rp.GeneratorCPUCores, 2), opt(rp.OtherCPUCores, 2))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, m := range []*MaxResult{r.MaxPentecost, r.MaxBaseline} {
		if m == nil {
			continue
		}
		name := KindPentecost
		if m == r.MaxBaseline {
			name = KindBaseline
		}
		fmt.Fprintf(w, "\nfind-max %s (bound: p99 <= %s, no loss, no drops, every join admitted):\n", name, dur(m.BoundP99Ms))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "listeners\tdelivered/s\tp50 ms\tp99 ms\tlost\tdrops\tserver CPU\tCPU s/M\tgen CPU\tother CPU\ttries\tverdict\t")
		for _, s := range m.Steps {
			rp := s.Report
			drops := "-"
			if rp.ServerDrops != nil {
				drops = fmt.Sprint(*rp.ServerDrops)
			}
			v := "ok"
			if !s.OK {
				v = "FAIL: " + s.Why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", group(fmt.Sprint(s.Listeners)),
				num(rp.DeliveredPerSec, 0), num(rp.LatencyP50Ms, 1), num(rp.LatencyP99Ms, 1), rp.LostFrames, drops,
				opt(rp.ServerCPUCores, 2), opt(rp.ServerCPUPerMillion, 2), num(rp.GeneratorCPUCores, 2), opt(rp.OtherCPUCores, 2), s.Tries, v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "max listeners held: %s\n", group(fmt.Sprint(m.MaxListeners)))
	}
	if r.MaxPentecost != nil && r.MaxBaseline != nil && r.Ratios != nil && r.Ratios.MaxListeners != nil {
		fmt.Fprintf(w, "ratio pentecost/baseline: %.2f\n", *r.Ratios.MaxListeners)
	}
	return nil
}

func first(rs ...*Report) *Report {
	for _, r := range rs {
		if r != nil {
			return r
		}
	}
	return nil
}

func dur(msv float64) string {
	return time.Duration(msv * float64(time.Millisecond)).String()
}
