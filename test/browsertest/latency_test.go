package browsertest

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pentecost/pentecost/server"
)

// writeClicks writes a WAV file of one second: a 30 ms burst of 1 kHz at the
// start, then silence. Chromium loops it as its fake microphone, so the
// speaker page "hears" a click every second.
func writeClicks(t *testing.T) string {
	t.Helper()
	const rate = 48000
	samples := make([]int16, rate)
	for i := 0; i < rate*30/1000; i++ {
		env := math.Min(1, math.Min(float64(i), float64(rate*30/1000-i))/float64(rate/1000)) // 1 ms ramps
		samples[i] = int16(0.8 * env * 32767 * math.Sin(2*math.Pi*1000*float64(i)/rate))
	}
	data := make([]byte, 44+2*len(samples))
	copy(data, "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*len(samples)))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], 1) // PCM
	binary.LittleEndian.PutUint16(data[22:], 1) // mono
	binary.LittleEndian.PutUint32(data[24:], rate)
	binary.LittleEndian.PutUint32(data[28:], rate*2)
	binary.LittleEndian.PutUint16(data[32:], 2)
	binary.LittleEndian.PutUint16(data[34:], 16)
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*len(samples)))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(s))
	}
	p := filepath.Join(t.TempDir(), "clicks.wav")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mouthToEar pairs each click heard by a listener with the click the
// speaker's microphone took last before it (clicks are a second apart) and
// returns the delays in milliseconds.
func mouthToEar(mouth, ear []float64) []float64 {
	var out []float64
	for _, e := range ear {
		best := -1.0
		for _, m := range mouth {
			if m <= e && m > best {
				best = m
			}
		}
		if best >= 0 && e-best < 900 {
			out = append(out, e-best)
		}
	}
	return out
}

func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(math.Min(float64(len(s)-1), math.Floor(p*float64(len(s)))))]
}

// TestBrowserLatency measures mouth-to-ear delay on loopback with timing
// taps: the speaker page records when a click reaches its capture worklet,
// each listener page when its player puts the click out (both on the audio
// clock, mapped to wall time; both pages in one browser, so one clock).
// Three listeners at once: the AudioWorklet path, the same in low-delay
// mode, and the scheduled path of a non-secure origin. It checks that the
// taps work and logs p50/p95; the figures are to be read on a quiet
// machine (docs/benchmarks.md), not asserted here.
func TestBrowserLatency(t *testing.T) {
	clicks := writeClicks(t)
	b := roomBrowser(t, chromedp.Flag("use-file-for-fake-audio-capture", clicks))
	// For measurements (docs/benchmarks.md): PENTECOST_LATENCY_PACKET_MS
	// sets the server's packet duration (serve --packet-ms), and
	// PENTECOST_LATENCY_CODEC=pcm16 makes both apps keep to PCM16 (the
	// override a phone's owner can set) instead of Opus where the browser
	// has it.
	packetMs := 0
	if v := os.Getenv("PENTECOST_LATENCY_PACKET_MS"); v != "" {
		var err error
		if packetMs, err = strconv.Atoi(v); err != nil {
			t.Fatalf("PENTECOST_LATENCY_PACKET_MS=%q: %v", v, err)
		}
	}
	n := startNode(t, "127.0.0.1:0", t.TempDir(), func(c *server.Config) {
		if packetMs != 0 {
			c.PacketMs = packetMs
		}
	})
	if os.Getenv("PENTECOST_LATENCY_CODEC") == "pcm16" {
		set := b.tab("settings") // localStorage is the origin's: every tab's
		for _, base := range []string{n.url, roomURL(n)} {
			set.navigate(base + "/")
			set.do(chromedp.Evaluate[chromedp.Void](`localStorage.setItem('pentecost.opus', 'off')`))
		}
	}

	sp := b.tab("speaker")
	sp.navigate(n.url + "/speak?taps#token=" + n.token("pastor"))
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	sp.click("start")
	s := sp.waitStats("on air", 15*time.Second, func(s stats) bool { return s.str("state") == "live" && s.num("chunksSent") > 5 })
	id := s.str("sessionId")

	type run struct {
		name, base string
		lowDelay   bool
		path       string
	}
	runs := []run{
		{"worklet", n.url, false, "worklet"},
		{"worklet-low-delay", n.url, true, "worklet"},
		{"scheduled (non-secure origin)", roomURL(n), false, "scheduled"},
	}
	pages := make([]*page, len(runs))
	for i, r := range runs {
		p := b.tab(r.name)
		p.navigate(r.base + "/listen/" + id + "?taps")
		p.click("listen")
		if r.lowDelay {
			p.waitJS("!document.getElementById('player').hidden", 5*time.Second)
			p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('low-delay').click()`))
		}
		pages[i] = p
	}
	for i, p := range pages {
		st := waitPlaying(p, stats{}, 15*time.Second)
		if st.str("path") != runs[i].path || (st["lowDelay"] == true) != runs[i].lowDelay {
			t.Fatalf("%s: path %v lowDelay %v", runs[i].name, st["path"], st["lowDelay"])
		}
		p.do(chromedp.Evaluate[chromedp.Void](`window.pentecostTaps.ear.length = 0`))
	}
	sp.do(chromedp.Evaluate[chromedp.Void](`window.pentecostTaps.mouth.length = 0`))
	// Clicks come one a second: wait for 14 of them, and name what was
	// missing if they do not come.
	sp.waitJS("window.pentecostTaps.mouth.length >= 14", 20*time.Second)
	mouth := eval[[]float64](sp, "window.pentecostTaps.mouth")
	if len(mouth) < 8 {
		t.Fatalf("the speaker's tap saw %d clicks in 14 s, want about 14", len(mouth))
	}
	for i, p := range pages {
		ear := eval[[]float64](p, "window.pentecostTaps.ear")
		d := mouthToEar(mouth, ear)
		st := p.stats()
		if len(d) < 6 {
			t.Errorf("%s: %d clicks heard and matched (of %d heard, %d spoken)", runs[i].name, len(d), len(ear), len(mouth))
			continue
		}
		t.Logf("mouth-to-ear, %s: p50 %.0f ms, p95 %.0f ms (%d clicks; speaker sends %v, listener gets %v, %v ms packets; buffer target %v ms, jitter %v ms, output %v ms, underruns %v)",
			runs[i].name, percentile(d, 0.5), percentile(d, 0.95), len(d), sp.stats()["codec"], st["codec"], sp.stats()["packetMs"],
			st["targetMs"], st["jitterMs"], st["delayMs"], st["underruns"])
	}
	checkClean(t, sp, pages[0], pages[1], pages[2])
}
