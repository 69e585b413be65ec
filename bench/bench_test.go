package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func tinyConfig() Config {
	c := Defaults()
	c.InProcess = true
	c.Speakers = 1
	c.Listeners = 5
	c.Languages = 2
	c.Duration = 800 * time.Millisecond
	c.Warmup = 200 * time.Millisecond
	c.Drain = time.Second
	c.Settle = 100 * time.Millisecond
	c.Stalled = 0
	c.Timeout = 30 * time.Second
	return c
}

func TestTinyRunAgainstPentecostAndBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real WebSockets for a few seconds")
	}
	cfg := tinyConfig()
	cfg.Baseline = true
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Report{res.Pentecost, res.Baseline} {
		if r == nil {
			t.Fatal("missing report")
		}
		if r.ServerMode != ModeInProcess {
			t.Errorf("%s: mode %q", r.Target, r.ServerMode)
		}
		if r.DeliveredFrames <= 0 || r.DeliveredPerSec <= 0 {
			t.Errorf("%s: delivered %d (%.0f/s)", r.Target, r.DeliveredFrames, r.DeliveredPerSec)
		}
		// 0.8 s of 50 chunks/s to 5 listeners.
		if r.ExpectedFrames < 5*35 || r.ExpectedFrames > 5*45 {
			t.Errorf("%s: expected %d frames, want about 200", r.Target, r.ExpectedFrames)
		}
		if r.LostFrames != 0 || r.SeqGaps != 0 || r.UnknownSeq != 0 {
			t.Errorf("%s: lost %d, gaps %d, unknown %d", r.Target, r.LostFrames, r.SeqGaps, r.UnknownSeq)
		}
		// 640 B of pcm16, the 16-byte header and 2 bytes of WebSocket
		// framing, 50 times a second: 263 kbit/s.
		if r.ListenerKbps < 250 || r.ListenerKbps > 280 {
			t.Errorf("%s: %.1f kbit/s per listener, want about 263", r.Target, r.ListenerKbps)
		}
		if r.ServerDrops == nil || *r.ServerDrops != 0 {
			t.Errorf("%s: drops %v", r.Target, r.ServerDrops)
		}
		if r.Joins != 5 || r.JoinFailures != 0 || r.Listeners != 5 {
			t.Errorf("%s: joins %d, failures %d (%v), measured %d", r.Target, r.Joins, r.JoinFailures, r.JoinErrors, r.Listeners)
		}
		if r.LatencyP50Ms <= 0 || r.LatencyP99Ms < r.LatencyP50Ms || r.LatencyMaxMs < r.LatencyP99Ms {
			t.Errorf("%s: latency p50 %.3f p99 %.3f max %.3f", r.Target, r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
		}
		if r.JoinP99Ms <= 0 {
			t.Errorf("%s: join p99 %.3f", r.Target, r.JoinP99Ms)
		}
		// In-process: the server's CPU and memory are not separable.
		if r.ServerCPUPerMillion != nil || r.RSSIdlePerConnKB != nil {
			t.Errorf("%s: in-process run reported server CPU or RSS", r.Target)
		}
	}
	if res.Ratios == nil || res.Ratios.DeliveredPerSec == nil {
		t.Fatalf("ratios: %+v", res.Ratios)
	}

	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	collectKeys(doc, keys)
	for _, k := range []string{"latency_p50_ms", "latency_p99_ms", "latency_p999_ms", "latency_max_ms", "join_p99_ms", "window_ms", "warmup_ms", "chunk_interval_ms", "elapsed_ms", "listener_kbps", "codec"} {
		if !keys[k] {
			t.Errorf("JSON lacks %q", k)
		}
	}
	for k := range keys {
		if strings.Contains(k, "_per_") { // rates and costs, not durations
			continue
		}
		for _, bad := range []string{"_s", "_sec", "_seconds", "_ns", "_us", "_duration"} {
			if strings.HasSuffix(k, bad) {
				t.Errorf("JSON key %q: durations must be in milliseconds, keys ending in _ms", k)
			}
		}
	}

	buf.Reset()
	if err := res.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delivered frames/s", "latency p99 ms", "pentecost (in-process)", "baseline (in-process)", "ratio", "listener kbit/s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func collectKeys(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			into[k] = true
			collectKeys(e, into)
		}
	case []any:
		for _, e := range x {
			collectKeys(e, into)
		}
	}
}

func TestStalledListenerAndStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real WebSockets for a few seconds")
	}
	cfg := tinyConfig()
	cfg.Stalled = 1
	cfg.StalledChunkBytes = 32768
	cfg.JoinStorm = 200 * time.Millisecond
	cfg.Duration = 500 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Pentecost
	if r.Stalled != 1 || r.Listeners != 5 || r.Joins != 6 || r.JoinFailures != 0 {
		t.Fatalf("stalled %d, measured %d, joins %d, failures %d %v", r.Stalled, r.Listeners, r.Joins, r.JoinFailures, r.JoinErrors)
	}
	if r.LostFrames != 0 || r.DeliveredFrames == 0 {
		t.Fatalf("lost %d, delivered %d: a stalled listener must not cost the others anything", r.LostFrames, r.DeliveredFrames)
	}
	if r.JoinStormMs != 200 {
		t.Fatalf("join storm %v ms", r.JoinStormMs)
	}
}

func TestFindMaxStepsUntilTheCeiling(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real WebSockets for a few seconds")
	}
	cfg := tinyConfig()
	cfg.Pentecost, cfg.Baseline = false, true
	cfg.FindMax = true
	cfg.Listeners, cfg.Step, cfg.MaxListeners = 2, 2, 4
	cfg.Duration = 300 * time.Millisecond
	cfg.Warmup = 200 * time.Millisecond
	cfg.MaxP99 = 5 * time.Second
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.MaxBaseline
	if m == nil || len(m.Steps) != 2 || m.MaxListeners != 4 || res.Baseline == nil {
		t.Fatalf("find-max: %+v", m)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	q := h.Quantiles(0.5, 0.99, 0.999, 1)
	want := []time.Duration{5000 * time.Microsecond, 9900 * time.Microsecond, 9990 * time.Microsecond, 10000 * time.Microsecond}
	for i := range q {
		if diff := float64(q[i]-want[i]) / float64(want[i]); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%d = %v, want %v within 2%%", i, q[i], want[i])
		}
	}
	if h.Max() != 10*time.Millisecond || h.Count() != 10000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket [%d,%d]", v, lo, hi)
		}
	}
}

func TestParseFrame(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 300)
	f := append([]byte{0x82, 126, 1, 44}, payload...)
	if _, _, n, ok := parseFrame(f[:100]); ok || n != len(f) {
		t.Fatalf("partial frame: ok %v n %d", ok, n)
	}
	p, op, n, ok := parseFrame(f)
	if !ok || n != len(f) || op != 2 || !bytes.Equal(p, payload) {
		t.Fatalf("frame: ok %v n %d op %d", ok, n, op)
	}
	masked := appendClientFrame(nil, 1, []byte("hello"))
	p, op, _, ok = parseFrame(masked)
	if !ok || op != 1 || string(p) != "hello" {
		t.Fatalf("masked frame: %q %v", p, ok)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"ws://127.0.0.1:8080/ws", "ws://localhost:1/ws", "ws://[::1]:9/ws"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"ws://10.0.0.1/ws", "ws://example.com/ws", "wss://127.0.0.1/ws", "http://127.0.0.1/ws"} {
		if err := checkLoopback(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# HELP x\ngo_goroutines 12\npentecost_audio_frames_dropped_total 3\nfoo{a=\"b c\"} 2\nfoo{a=\"d\"} 5 1700000000\n"))
	}))
	defer srv.Close()
	m, err := scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 12 || m[metricDropped] != 3 || m["foo"] != 7 {
		t.Fatalf("scraped %v", m)
	}
}
