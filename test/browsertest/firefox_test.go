package browsertest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
)

// TestBrowserFirefox runs the listener app in Gecko (Firefox ESR, driven
// over WebDriver BiDi): on localhost (a secure context: the AudioWorklet
// path) and at phone size on a non-secure origin (http://pentecost.test:PORT,
// every host name resolving to loopback: the scheduled path), playing a Go
// speaker's tone both times; the jitter buffer's simulation, as in the other
// engines; and the speaker app's note on the non-secure origin.
func TestBrowserFirefox(t *testing.T) {
	ff := newFirefox(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	id := goSpeaker(t, n)

	for _, c := range []struct {
		base   string
		secure bool
		path   string
		sz     size
	}{
		{n.url, true, "worklet", desktop},
		{roomURL(n), false, "scheduled", phone},
	} {
		ff.setViewport(c.sz)
		ff.navigate(c.base + "/listen/" + id)
		ff.waitStats("the app", 10*time.Second, func(s stats) bool { return s["ready"] == true })
		if got := ffEval[bool](ff, "window.isSecureContext"); got != c.secure {
			t.Fatalf("%s: isSecureContext %v, want %v", c.base, got, c.secure)
		}
		if got := ffEval[int](ff, "window.innerWidth"); got != c.sz.widthPx() {
			t.Errorf("%s: viewport %d px wide, want %d", c.base, got, c.sz.widthPx())
		}
		// The listener asks for Opus; a server with Opus encodes the Go
		// speaker's pcm16 for it, which Gecko decodes with WebCodecs'
		// AudioDecoder in the secure context and with the WASM decoder on
		// the non-secure origin (Firefox has AudioDecoder in secure contexts
		// only: nothing is forced here); one without Opus sends pcm16.
		want, decoder := "pcm16", "pcm16"
		if opus.Available {
			want, decoder = "opus", "wasm"
			if c.secure {
				decoder = "webcodecs"
			}
		}
		s := playsTone(t, ff, c.base, c.path, want, decoder)
		if w := ffEval[[]int](ff, "[document.documentElement.scrollWidth, window.innerWidth]"); w[0] > w[1] {
			t.Errorf("%s: the page is %d px wide in a %d px viewport", c.base, w[0], w[1])
		}
		t.Logf("Firefox, %s (%s): %s path, %s by %s, delay %v ms, underruns %v",
			c.base, c.sz.name, s.str("path"), s.str("codec"), s.str("decoder"), s["delayMs"], s["underruns"])
	}

	checkJitter(t, "Firefox", false, ffEval[[]jitterPoint](ff, fmt.Sprintf("(%s)(false)", jitterSim)))

	// The speaker app on the non-secure origin: no microphone there, so it
	// explains the two ways out and does not offer to start.
	room := roomURL(n)
	ff.navigate(room + "/speak#token=" + n.token("pastor"))
	ff.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	if ffEval[bool](ff, "document.getElementById('insecure').hidden") {
		t.Fatal("Firefox: no explanation on a non-secure origin")
	}
	_, port, _ := net.SplitHostPort(n.addr)
	if txt := ffEval[string](ff, "document.getElementById('insecure').textContent"); !strings.Contains(txt, "http://localhost:"+port+"/speak") ||
		!strings.Contains(txt, "HTTPS") {
		t.Errorf("Firefox: the explanation does not name both ways out: %q", txt)
	}
	if !ffEval[bool](ff, "document.getElementById('start').disabled") {
		t.Error("Firefox: Start broadcast is offered where the microphone cannot work")
	}
	if v := ffEval[[]string](ff, "window.pentecostStats.cspViolations || []"); len(v) > 0 {
		t.Errorf("Firefox, speaker: the CSP blocked %v", v)
	}
	if errs := ff.c.uncaught(); len(errs) > 0 {
		t.Errorf("Firefox: the pages threw:\n%s", strings.Join(errs, "\n"))
	}
}
