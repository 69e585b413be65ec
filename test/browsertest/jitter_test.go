package browsertest

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// jitterSim runs the listener's jitter buffer (js/player/jitter.js) in the
// page against simulated arrivals: 40 ms chunks of speech-like audio (200
// ms of tone, 200 ms of silence) with up to 10 ms of jitter, and one 600 ms
// stall at 10 s after which the late chunks arrive in a burst. Time is
// simulated (the buffer counts the samples pulled), so the result does not
// depend on the machine.
const jitterSim = `(lowDelay) => import('/static/js/player/jitter.js').then(({ JitterBuffer }) => {
	const jb = new JitterBuffer(16000, { lowDelay, quantumMs: 8 });
	const block = new Float32Array(128);
	let seed = 7;
	const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
	const jitter = [];
	const arrival = (i) => {
		if (jitter[i] === undefined) jitter[i] = rnd() * 10;
		const t = 40 * (i + 1) + jitter[i];
		return t >= 10000 && t < 10600 ? 10600 : t; // the stall
	};
	const chunk = (i) => {
		const f = new Float32Array(640);
		if (Math.floor(i / 5) % 2 === 0) for (let k = 0; k < 640; k++) f[k] = 0.5 * Math.sin((2 * Math.PI * 440 * (i * 640 + k)) / 16000);
		return f;
	};
	const out = [];
	let seq = 0;
	let levelSum = 0;
	let levelN = 0;
	for (let step = 0; step * 8 < 30000; step++) {
		const t = step * 8;
		while (arrival(seq) <= t) { jb.push(chunk(seq), 16000, { arrival: arrival(seq) }); seq++; }
		jb.pull(block);
		if (jb.playing) { levelSum += jb.available() / 16; levelN++; }
		if (t % 1000 === 0) {
			out.push({ t, target: Math.round(jb.targetMs()), level: Math.round(levelN ? levelSum / levelN : 0), underruns: jb.underruns });
			levelSum = 0; levelN = 0;
		}
	}
	return out;
})`

type jitterPoint struct {
	T         int `json:"t"`
	Target    int `json:"target"`
	Level     int `json:"level"` // mean buffered ms over the last second
	Underruns int `json:"underruns"`
}

// TestBrowserJitterBuffer: the delay settles low on a steady network, a
// stall causes an underrun and raises it, and within seconds of the stall
// it is back down, the burst's excess drained.
func TestBrowserJitterBuffer(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	p := b.tab("jitter")
	p.navigate(n.url + "/")
	for _, lowDelay := range []bool{false, true} {
		pts := eval[[]jitterPoint](p, fmt.Sprintf("(%s)(%v)", jitterSim, lowDelay), chromedp.EvalAwaitPromise)
		checkJitter(t, "Chromium", lowDelay, pts)
	}
}

// checkJitter checks what jitterSim returned in one engine: the delay
// settles low on a steady network, the stall causes an underrun, the delay
// comes back down within 8 s of it and is still down at the end. An empty
// or short result fails the test.
func checkJitter(t *testing.T, engine string, lowDelay bool, pts []jitterPoint) {
	t.Helper()
	if len(pts) < 20 {
		t.Errorf("%s, lowDelay=%v: the jitter buffer's simulation returned %d points, want 30: %+v", engine, lowDelay, len(pts), pts)
		return
	}
	at := func(ms int) (jitterPoint, bool) {
		for _, x := range pts {
			if x.T == ms {
				return x, true
			}
		}
		t.Errorf("%s, lowDelay=%v: no point at %d ms: %+v", engine, lowDelay, ms, pts)
		return jitterPoint{}, false
	}
	steady, ok1 := at(9000)
	peak, ok2 := at(11000)
	if !ok1 || !ok2 {
		return
	}
	maxTarget := 100
	if lowDelay {
		maxTarget = 80
	}
	if steady.Target > maxTarget || steady.Level > steady.Target+20 || steady.Underruns > 1 {
		t.Errorf("%s, lowDelay=%v: on a steady network: %+v, want a target at most %d ms, the level near it, no underruns after the start", engine, lowDelay, steady, maxTarget)
	}
	if peak.Underruns <= steady.Underruns {
		t.Errorf("%s, lowDelay=%v: the 600 ms stall caused no underrun: %+v", engine, lowDelay, peak)
	}
	back := -1
	for _, x := range pts {
		if x.T > 10600 && x.Target <= steady.Target+15 && x.Level <= x.Target+20 {
			back = x.T
			break
		}
	}
	if back < 0 || back-10600 > 8000 {
		t.Errorf("%s, lowDelay=%v: the delay did not come back down within 8 s of the stall (back at %d ms): %+v", engine, lowDelay, back, pts)
	}
	if last := pts[len(pts)-1]; last.Target > 120 {
		t.Errorf("%s, lowDelay=%v: the jitter buffer's simulation ended at %+v", engine, lowDelay, last)
	}
	t.Logf("%s, lowDelay=%v: steady target %d ms (level %d ms); after the stall: %+v; back down %.1f s after it",
		engine, lowDelay, steady.Target, steady.Level, peak, float64(back-10600)/1000)
}
