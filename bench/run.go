package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/ctxtime"
	"github.com/pentecost/pentecost/protocol"
)

// Run measures what cfg asks for: one run per server kind, or a find-max
// ramp per kind, and the ratios of Pentecost to the baseline.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	res := &Result{StartedAt: time.Now()}
	defer func() { res.ElapsedMs = ms(time.Since(res.StartedAt)) }()
	audio, err := newAudio(cfg)
	if err != nil {
		return res, err
	}
	var kinds []string
	if cfg.Pentecost {
		kinds = append(kinds, KindPentecost)
	}
	if cfg.Baseline {
		kinds = append(kinds, KindBaseline)
	}
	if cfg.FindMax {
		for _, kind := range kinds {
			m, err := findMax(ctx, cfg, audio, kind)
			if err != nil {
				return res, err
			}
			if kind == KindPentecost {
				res.MaxPentecost, res.Pentecost = m, m.Best
			} else {
				res.MaxBaseline, res.Baseline = m, m.Best
			}
		}
	} else {
		// Repeats alternate the servers, so a burst of noise on the machine
		// hits both rather than one.
		runs := map[string][]*Report{}
		for i := 0; i < max(cfg.Repeat, 1); i++ {
			for _, kind := range kinds {
				rep, err := runOnce(ctx, cfg, audio, kind, cfg.Listeners)
				if err != nil {
					return res, fmt.Errorf("%s: %w", kind, err)
				}
				runs[kind] = append(runs[kind], rep)
			}
		}
		res.Pentecost = medianRun(runs[KindPentecost])
		res.Baseline = medianRun(runs[KindBaseline])
		if cfg.Repeat > 1 {
			res.RunsPentecost, res.RunsBaseline = runs[KindPentecost], runs[KindBaseline]
		}
	}
	res.Ratios = computeRatios(res.Pentecost, res.Baseline)
	if res.MaxPentecost != nil && res.MaxBaseline != nil && res.MaxBaseline.MaxListeners > 0 {
		if res.Ratios == nil {
			res.Ratios = &Ratios{}
		}
		res.Ratios.MaxListeners = ptr(round3(float64(res.MaxPentecost.MaxListeners) / float64(res.MaxBaseline.MaxListeners)))
	}
	return res, nil
}

// medianRun is the run with the median p99 latency.
func medianRun(rs []*Report) *Report {
	if len(rs) == 0 {
		return nil
	}
	s := append([]*Report(nil), rs...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].LatencyP99Ms < s[j].LatencyP99Ms })
	return s[(len(s)-1)/2]
}

// audio is what the speakers loop, made once per invocation.
type audio struct {
	chunks      [][]byte // the measured sessions' chunks or packets
	stallChunks [][]byte // the stalled listeners' own session's (pcm16)
}

func newAudio(cfg Config) (*audio, error) {
	a := &audio{}
	var err error
	if a.chunks, err = speakerAudio(cfg.Codec, cfg.ChunkBytes, cfg.PacketMs); err != nil {
		return nil, err
	}
	if cfg.StalledChunkBytes > 0 {
		if a.stallChunks, err = speakerAudio(protocol.CodecPCM16, cfg.StalledChunkBytes, 0); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// findMax raises listeners per session by Step until a bound breaks.
func findMax(ctx context.Context, cfg Config, audio *audio, kind string) (*MaxResult, error) {
	m := &MaxResult{BoundP99Ms: ms(cfg.MaxP99)}
	start := cfg.Listeners
	if start < 1 {
		start = cfg.Step
	}
	for l := start; l <= cfg.MaxListeners; l += cfg.Step {
		if ctx.Err() != nil {
			break
		}
		var s Step
		for try := 0; try <= cfg.Retries; try++ {
			rep, err := runOnce(ctx, cfg, audio, kind, l)
			if err != nil {
				if ctx.Err() != nil {
					return m, nil
				}
				return m, fmt.Errorf("%s at %d listeners/session: %w", kind, l, err)
			}
			s = judge(cfg, l, rep)
			s.Tries = try + 1
			if s.OK {
				break
			}
		}
		m.Steps = append(m.Steps, s)
		if !s.OK {
			break
		}
		m.MaxListenersPerSession, m.MaxListeners, m.Best = l, l*cfg.Speakers, s.Report
	}
	return m, nil
}

// judge checks one find-max step against the bounds.
func judge(cfg Config, l int, rep *Report) Step {
	s := Step{ListenersPerSession: l, Listeners: l * cfg.Speakers, Report: rep, OK: true}
	var why []string
	if d := time.Duration(rep.LatencyP99Ms * float64(time.Millisecond)); d > cfg.MaxP99 {
		why = append(why, fmt.Sprintf("p99 %.1f ms", rep.LatencyP99Ms))
	}
	if rep.LostFrames > 0 {
		why = append(why, fmt.Sprintf("%d lost", rep.LostFrames))
	}
	if rep.ServerDrops != nil && *rep.ServerDrops > 0 {
		why = append(why, fmt.Sprintf("%d dropped", *rep.ServerDrops))
	}
	if rep.JoinFailures > 0 || rep.LateJoins > 0 {
		why = append(why, fmt.Sprintf("%d joins failed or late", rep.JoinFailures+rep.LateJoins))
	}
	if len(why) > 0 {
		s.OK, s.Why = false, joinStrings(why)
	}
	return s
}

func joinStrings(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// run is the state of one run against one server.
type run struct {
	cfg       Config
	audio     *audio
	kind      string
	t         *target
	lps       int // listeners per session
	hist      *shardedHist
	joinHist  *Histogram
	speakers  []*speaker
	listeners []*listener
	stalled   []*listener
	stallSp   *speaker // the stalled listeners' own session, with StalledChunkBytes
	win       window
	progress  *progress
}

func runOnce(ctx context.Context, cfg Config, audio *audio, kind string, lps int) (rep *Report, err error) {
	t, err := startTarget(ctx, cfg, kind)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, audio: audio, kind: kind, t: t, lps: lps, hist: newShardedHist(16), joinHist: new(Histogram)}
	r.progress = newProgress(cfg, kind, lps)
	defer func() {
		r.closeAll()
		if serr := t.stop(); err == nil && serr != nil {
			err = serr
		}
	}()
	return r.execute(ctx)
}

// all is every listener, the stalled ones included, in a new slice.
func (r *run) all() []*listener {
	return append(append(make([]*listener, 0, len(r.listeners)+len(r.stalled)), r.listeners...), r.stalled...)
}

func (r *run) closeAll() {
	for _, l := range r.all() {
		if l.nc != nil {
			_ = l.nc.Close()
		}
	}
	for _, sp := range r.speakers {
		_ = sp.nc.Close()
	}
	if r.stallSp != nil {
		_ = r.stallSp.nc.Close()
	}
	for _, l := range r.all() {
		if l.nc != nil {
			<-l.done
		}
	}
}

func (r *run) execute(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	interval := cfg.ChunkInterval
	if r.t.mode == ModeChild {
		time.Sleep(300 * time.Millisecond) // let the child finish starting before the first reading
	}
	startU := r.t.read(ctx, true)

	r.progress.phase("connecting speakers")
	for i := 0; i < cfg.Speakers; i++ {
		sp, err := connectSpeaker(ctx, r.t.speakerURL(cfg.Codec, cfg.PacketMs), i)
		if err != nil {
			return nil, err
		}
		r.speakers = append(r.speakers, sp)
	}
	// Listeners, in session order; their languages cycle over K.
	for s, sp := range r.speakers {
		for j := 0; j < r.lps; j++ {
			idx := s*r.lps + j
			r.listeners = append(r.listeners, r.newListener(idx, sp, languages[j%cfg.Languages], cfg.Listens(), false))
		}
	}
	if cfg.Stalled > 0 && cfg.StalledChunkBytes > 0 {
		sp, err := connectSpeaker(ctx, r.t.speakerURL(protocol.CodecPCM16, 0), cfg.Speakers)
		if err != nil {
			return nil, err
		}
		r.stallSp = sp
	}
	for j := 0; j < cfg.Stalled; j++ {
		sp, codec := r.speakers[j%len(r.speakers)], cfg.Listens()
		if r.stallSp != nil {
			sp, codec = r.stallSp, protocol.CodecPCM16
		}
		r.stalled = append(r.stalled, r.newListener(-1, sp, languages[j%cfg.Languages], codec, true))
	}

	storm := cfg.JoinStorm > 0
	var idleU usage
	haveIdle := false
	if !storm {
		r.progress.phase("joining listeners")
		r.joinPool(ctx, r.all())
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.progress.phase("settling")
		ctxtime.Sleep(ctx, cfg.Settle)
		idleU = r.t.read(ctx, true)
		haveIdle = true
	}

	// The schedule is fixed before the first chunk.
	audioStart := mono() + int64(100*time.Millisecond)
	winStart := audioStart + int64(cfg.Warmup)
	if storm {
		winStart += int64(cfg.JoinStorm)
	}
	r.win = window{start: winStart, end: winStart + int64(cfg.Duration)}
	actx, stopAudio := context.WithCancel(ctx)
	defer stopAudio()
	var swg sync.WaitGroup
	for i, sp := range r.speakers {
		offset := int64(interval) * int64(i) / int64(len(r.speakers))
		swg.Add(1)
		go func() {
			defer swg.Done()
			sp.stream(actx, audioStart+offset, r.win.end, interval, r.audio.chunks, r.win)
		}()
	}
	if r.stallSp != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			r.stallSp.stream(actx, audioStart, r.win.end, interval, r.audio.stallChunks, r.win)
		}()
	}
	var stormDone chan struct{}
	if storm {
		stormDone = make(chan struct{})
		go func() {
			defer close(stormDone)
			r.joinStorm(ctx, audioStart, r.all())
		}()
	}

	r.progress.phase("warm-up")
	r.waitUntil(ctx, r.win.start)
	r.t.profile(true)
	winU := r.t.read(ctx, true)
	r.progress.phase("measuring")
	r.waitUntil(ctx, r.win.end)
	endU := r.t.read(ctx, true)
	r.t.profile(false)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	swg.Wait()
	if storm {
		<-stormDone
	}

	r.progress.phase("draining")
	included, expected := r.included()
	r.drain(ctx, included, expected)
	finalU := r.t.read(ctx, true)
	r.readStalled()
	r.progress.done()

	rep := r.report(included, expected, startU, idleU, haveIdle, winU, endU, finalU)
	return rep, nil
}

func (r *run) newListener(idx int, sp *speaker, lang, codec string, stalled bool) *listener {
	h := r.hist.shard(max(idx, 0))
	return &listener{
		idx: idx, sess: sp, hist: h, stalled: stalled,
		joined: make(chan struct{}), done: make(chan struct{}),
		url: r.t.listenerURL(sp.sessionID, lang, codec), codec: codec,
	}
}

// joinOne dials and joins l and waits for the verdict.
func (r *run) joinOne(ctx context.Context, l *listener) {
	l.dialStart = time.Now()
	rcv := 0
	if l.stalled {
		rcv = 4096
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
	defer cancel()
	nc, pending, err := dial(dctx, l.url, rcv)
	if err != nil {
		l.fail(sanitize(err.Error()))
		close(l.done)
		return
	}
	l.nc, l.pending = nc, pending
	go l.read()
	select {
	case <-l.joined:
	case <-dctx.Done():
		l.fail("timeout")
	}
	if lat, ok := l.joinLatency(); ok {
		r.joinHist.Record(lat)
	}
	r.progress.joined()
}

func (r *run) joinPool(ctx context.Context, ls []*listener) {
	jobs := make(chan *listener)
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.JoinConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range jobs {
				r.joinOne(ctx, l)
			}
		}()
	}
	for _, l := range ls {
		if ctx.Err() != nil {
			l.fail("cancelled")
			close(l.done)
			continue
		}
		jobs <- l
	}
	close(jobs)
	wg.Wait()
}

// joinStorm starts every join on a uniform schedule over the storm, each in
// its own goroutine, whatever the server's pace.
func (r *run) joinStorm(ctx context.Context, from int64, ls []*listener) {
	var wg sync.WaitGroup
	n := int64(len(ls))
	for i, l := range ls {
		due := from + int64(r.cfg.JoinStorm)*int64(i)/max(n, 1)
		if d := due - mono(); d > 0 {
			ctxtime.Sleep(ctx, time.Duration(d))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ctx.Err() != nil {
				l.fail("cancelled")
				close(l.done)
				return
			}
			r.joinOne(ctx, l)
		}()
	}
	wg.Wait()
}

// included returns the listeners measured (joined before the window opened,
// reading) and the deliveries they should get: every in-window chunk of
// their session.
func (r *run) included() ([]*listener, int64) {
	var out []*listener
	var expected int64
	for _, l := range r.listeners {
		if at := l.joinedAt.Load(); at != 0 && at < r.win.start {
			out = append(out, l)
			expected += l.sess.sentWindow.Load()
		}
	}
	return out, expected
}

// drain waits until every expected chunk has arrived, nothing has moved for
// a second, or the drain bound is reached.
func (r *run) drain(ctx context.Context, ls []*listener, expected int64) {
	deadline := time.Now().Add(r.cfg.Drain)
	last, lastMove := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var got int64
		for _, l := range ls {
			got += l.inWindow.Load()
		}
		if got >= expected {
			return
		}
		if got != last {
			last, lastMove = got, time.Now()
		} else if time.Since(lastMove) > time.Second {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readStalled reads what each stalled listener was sent, to learn whether
// the server gave up on it (close code 4008 for a slow consumer).
func (r *run) readStalled() {
	var wg sync.WaitGroup
	for _, l := range r.stalled {
		if l.nc == nil || l.failure() != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stallCode = readToClose(l.nc, 500*time.Millisecond)
		}()
	}
	wg.Wait()
}

// waitUntil sleeps until the mono() instant t, printing progress.
func (r *run) waitUntil(ctx context.Context, t int64) {
	for {
		d := time.Duration(t - mono())
		if d <= 0 || ctx.Err() != nil {
			return
		}
		step := r.cfg.ProgressInterval
		if step <= 0 || step > d {
			step = d
		}
		ctxtime.Sleep(ctx, step)
		r.progress.tick(r)
	}
}

func (r *run) report(ls []*listener, expected int64, startU, idleU usage, haveIdle bool, winU, endU, finalU usage) *Report {
	cfg := r.cfg
	win := time.Duration(r.win.end - r.win.start)
	secs := win.Seconds()
	rep := &Report{
		Target: r.kind, ServerMode: r.t.mode,
		Speakers: cfg.Speakers, ListenersPerSession: r.lps, Languages: cfg.Languages,
		Listeners: len(ls), Stalled: len(r.stalled),
		Codec: cfg.Codec, ListenerCodec: cfg.Listens(), PacketMs: cfg.PacketMs,
		ChunkBytes: cfg.ChunkBytes, ChunkIntervalMs: ms(cfg.ChunkInterval),
		WindowMs: ms(win), WarmupMs: ms(cfg.Warmup), JoinStormMs: ms(cfg.JoinStorm),
		OfferedPerSec:  float64(cfg.Speakers*r.lps) * cfg.Rate(),
		ExpectedFrames: expected,
		MachineCores:   runtime.NumCPU(),
	}
	for _, sp := range r.speakers {
		rep.SentChunks += sp.sentWindow.Load()
		rep.SpeakerLate += sp.late.Load()
		if err, ok := sp.writeErr.Load().(error); ok && err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("speaker %d stopped: %v", sp.idx, err))
		}
	}
	if cfg.Codec == protocol.CodecOpus {
		rep.ChunkBytes = int(math.Round(meanLen(r.audio.chunks)))
	}
	var windowBytes int64
	for _, l := range ls {
		rep.DeliveredFrames += l.inWindow.Load()
		rep.SeqGaps += l.gaps.Load()
		rep.UnknownSeq += l.unknown.Load()
		windowBytes += l.windowBytes.Load()
		select {
		case <-l.done:
			if rep.Disconnected == nil {
				rep.Disconnected = map[string]int{}
			}
			code := "connection ended"
			if l.closeCode != 0 {
				code = fmt.Sprint(l.closeCode)
			}
			rep.Disconnected[code]++
		default:
		}
	}
	if n := len(rep.Disconnected); n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("listeners were disconnected during the run: %v (close code: count)", rep.Disconnected))
	}
	other := 0
	for _, l := range ls {
		if l.otherCodec.Load() {
			other++
		}
	}
	if other > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d listeners were sent another codec than the %s they asked for: the server does not convert (built without Opus?)", other, cfg.Listens()))
	}
	if rep.UnknownSeq > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("listeners received %d chunks numbered past what the speakers sent: the server did not number the sessions from 0, so latency and loss are not measured for them", rep.UnknownSeq))
	}
	if len(ls) > 0 {
		rep.ListenerKbps = round3(float64(windowBytes) / float64(len(ls)) / secs * 8 / 1000)
	}
	rep.DeliveredPerSec = round3(float64(rep.DeliveredFrames) / secs)
	rep.LostFrames = max(expected-rep.DeliveredFrames, 0)
	if expected > 0 {
		rep.LossRatio = float64(rep.LostFrames) / float64(expected)
	}
	h := r.hist.merged()
	q := h.Quantiles(0.5, 0.99, 0.999)
	rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencyP999Ms = ms(q[0]), ms(q[1]), ms(q[2])
	rep.LatencyMaxMs, rep.LatencyMeanMs = ms(h.Max()), ms(h.Mean())

	for _, l := range r.stalled {
		if l.stallCode != "" {
			if rep.StalledClosed == nil {
				rep.StalledClosed = map[string]int{}
			}
			rep.StalledClosed[l.stallCode]++
		}
	}
	// Joins: every listener, stalled ones included.
	all := r.all()
	rep.Joins = len(all)
	for _, l := range all {
		if e := l.failure(); e != "" {
			rep.JoinFailures++
			if rep.JoinErrors == nil {
				rep.JoinErrors = map[string]int{}
			}
			rep.JoinErrors[e]++
		} else if !l.stalled {
			if at := l.joinedAt.Load(); at >= r.win.start {
				rep.LateJoins++
			}
		}
	}
	jq := r.joinHist.Quantiles(0.5, 0.99)
	rep.JoinP50Ms, rep.JoinP99Ms, rep.JoinMaxMs = ms(jq[0]), ms(jq[1]), ms(r.joinHist.Max())

	if finalU.dropOK && winU.dropOK {
		d := int64(finalU.dropped - winU.dropped)
		if r.t.kind == KindPentecost && len(r.stalled) > 0 {
			rep.Warnings = append(rep.Warnings, "server drops include the stalled listeners' (by design)")
		}
		rep.ServerDrops = &d
	}
	if winU.batchOK && endU.batchOK && endU.batchCount > winU.batchCount {
		rep.FramesPerWrite = ptr(round3((endU.batchSum - winU.batchSum) / (endU.batchCount - winU.batchCount)))
	}
	if winU.serverOK && endU.serverOK {
		cpu := (endU.serverCPU - winU.serverCPU).Seconds()
		rep.ServerCPUMs = ptr(round3(cpu * 1000))
		rep.ServerCPUCores = ptr(round3(cpu / secs))
		// Per million frames the server wrote in the same window when it
		// says (a backlog at either end of the window then cannot skew the
		// figure), else per million the listeners received.
		frames := float64(rep.DeliveredFrames)
		if winU.writtenOK && endU.writtenOK {
			frames = endU.written - winU.written
			rep.ServerWrittenPerSec = ptr(round3(frames / secs))
		}
		if frames > 0 {
			rep.ServerCPUPerMillion = ptr(round3(cpu / (frames / 1e6)))
		}
	}
	gen := (endU.selfCPU - winU.selfCPU).Seconds()
	rep.GeneratorCPUCores = round3(gen / secs)
	if rep.DeliveredFrames > 0 {
		rep.GeneratorCPUPerMillion = round3(gen / (float64(rep.DeliveredFrames) / 1e6))
	}
	if winU.machOK && endU.machOK {
		busy := (endU.machBusy - winU.machBusy).Seconds()
		soft := (endU.machSoft - winU.machSoft).Seconds()
		rep.SoftirqCPUCores = ptr(round3(soft / secs))
		// Softirq time is charged to whichever task it interrupted, so it is
		// already inside the server's and the generator's times; "other"
		// is what neither of them used.
		other := busy - gen
		if rep.ServerCPUMs != nil && r.t.mode != ModeInProcess {
			other -= *rep.ServerCPUMs / 1000
		}
		rep.OtherCPUCores = ptr(round3(max(other, 0) / secs))
		cores := float64(runtime.NumCPU())
		serverCores := 0.0
		if rep.ServerCPUCores != nil {
			serverCores = *rep.ServerCPUCores
		}
		ours := rep.GeneratorCPUCores + serverCores
		if r.t.mode != ModeInProcess && ours >= 0.8*cores && rep.GeneratorCPUCores >= serverCores {
			rep.GeneratorLimited = true
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"the workload filled the machine (%.2f of %d cores: server and generator) and the generator used more CPU (%.2f cores) than the server: figures may be the generator's limit, not the server's",
				ours, runtime.NumCPU(), rep.GeneratorCPUCores))
		}
		if busy/secs >= 0.9*cores && rep.OtherCPUCores != nil && *rep.OtherCPUCores > 0.25 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the machine was saturated (%.2f of %d cores busy), %.2f cores of it by other processes: latency figures include waiting for CPU",
				busy/secs, runtime.NumCPU(), *rep.OtherCPUCores))
		} else if o := *rep.OtherCPUCores; o > 0.25 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes used %.2f cores during the window (noise)", o))
		}
	}
	if rep.SentChunks > 0 && float64(rep.SpeakerLate) > 0.01*float64(rep.SentChunks) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d chunks left the speakers more than one interval late: the generator could not keep the schedule", rep.SpeakerLate))
	}

	conns := float64(len(r.listeners) + len(r.stalled) + len(r.speakers))
	mb := func(b int64) *float64 { return ptr(round3(float64(b) / (1 << 20))) }
	if startU.rss > 0 {
		rep.ServerRSSStartMB = mb(startU.rss)
		if haveIdle && idleU.rss > 0 && conns > 0 {
			rep.ServerRSSIdleMB = mb(idleU.rss)
			rep.RSSIdlePerConnKB = ptr(round3(float64(idleU.rss-startU.rss) / 1024 / conns))
		}
		if endU.rss > 0 && conns > 0 {
			rep.ServerRSSLoadMB = mb(endU.rss)
			rep.RSSLoadPerConnKB = ptr(round3(float64(endU.rss-startU.rss) / 1024 / conns))
		}
	}
	if startU.goMemOK && conns > 0 {
		if haveIdle && idleU.goMemOK {
			rep.GoMemIdlePerConnKB = ptr(round3((idleU.goMem - startU.goMem) / 1024 / conns))
		}
		if endU.goMemOK {
			rep.GoMemLoadPerConnKB = ptr(round3((endU.goMem - startU.goMem) / 1024 / conns))
		}
	}
	if startU.gorOK && conns > 0 {
		if haveIdle && idleU.gorOK {
			rep.GoroutinesPerConn = ptr(round3((idleU.goroutines - startU.goroutines) / conns))
		}
		if endU.gorOK {
			rep.GoroutinesPerConnRun = ptr(round3((endU.goroutines - startU.goroutines) / conns))
			if rep.GoroutinesPerConn == nil {
				rep.GoroutinesPerConn = rep.GoroutinesPerConnRun
			}
		}
	}
	if rep.JoinErrors != nil {
		keys := make([]string, 0, len(rep.JoinErrors))
		for k := range rep.JoinErrors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d joins failed: %v", rep.JoinFailures, keys))
	}
	return rep
}
