package browsertest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/opus"
)

// goSpeaker broadcasts a 440 Hz tone from a Go client (as `pentecost speak`
// does), 40 ms chunks in real time, until the test ends. It returns the
// session ID.
func goSpeaker(t *testing.T, n *node) string {
	t.Helper()
	return goSpeakerIn(t, n, "en")
}

// goSpeakerIn is goSpeaker for a session whose source language is lang.
func goSpeakerIn(t *testing.T, n *node, lang string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	q := url.Values{"action": {"createSession"}, "sourceLanguage": {lang}, "token": {n.token("pastor")}}
	c, err := client.Dial(ctx, "ws://"+n.addr+"/ws?"+q.Encode(), client.DialOptions{})
	if err != nil {
		cancel()
		t.Fatalf("speaker: %v", err)
	}
	ev, err := c.Expect(ctx, "sessionCreated")
	if err != nil {
		cancel()
		t.Fatalf("speaker: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			b := make([]byte, 1280)
			for k := 0; k < 640; k++ {
				v := 0.5 * math.Sin(2*math.Pi*440*float64(i*640+k)/16000)
				binary.LittleEndian.PutUint16(b[2*k:], uint16(int16(v*32767)))
			}
			if c.SendBinary(ctx, b) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.CloseNow()
	})
	return ev.String("sessionId")
}

// TestBrowserWebKit runs the listener app in Safari's engine (WebKitGTK):
// on localhost (a secure context: the AudioWorklet path) and on a
// non-secure origin at phone size (http://pentecost.test:PORT, reached
// through a loopback proxy instead of a hosts-file entry: the scheduled
// path), playing a Go speaker's tone both times; and the jitter buffer's
// simulation, as in Chromium.
func TestBrowserWebKit(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	wk := newWebKit(t, loopbackProxy(t, n))
	id := goSpeaker(t, n)
	wk.call("POST", "/window/rect", map[string]int{"width": phone.widthPx(), "height": phone.heightPx()}, nil)

	for _, c := range []struct {
		base   string
		secure bool
		path   string
		wasm   bool // force the WASM Opus decoder (Safari before 26 has no AudioDecoder)
	}{
		{n.url, true, "worklet", false},
		{roomURL(n), false, "scheduled", true},
	} {
		wk.navigate(c.base + "/listen/" + id)
		if c.wasm {
			wdExec[any](wk, "localStorage.setItem('pentecost.opus', 'wasm'); return null")
			wk.navigate(c.base + "/listen/" + id)
		}
		wk.waitStats("the app", 10*time.Second, func(s stats) bool { return s["ready"] == true })
		if got := wdExec[bool](wk, "return window.isSecureContext"); got != c.secure {
			t.Fatalf("%s: isSecureContext %v, want %v", c.base, got, c.secure)
		}
		// The listener asks for Opus; a server with Opus encodes the Go
		// speaker's pcm16 for it (decoded by WebCodecs where the engine has
		// AudioDecoder: WebKitGTK 2.50 has it even on the non-secure
		// origin; by the WASM decoder when forced, as Safari before 26
		// would); one without Opus sends the session's pcm16.
		want, decoder := "pcm16", "pcm16"
		if opus.Available {
			want, decoder = "opus", "webcodecs"
			if c.wasm {
				decoder = "wasm"
			}
		}
		s := playsTone(t, wk, c.base, c.path, want, decoder)
		t.Logf("WebKit, %s: %s path, %s by %s, delay %v ms, underruns %v", c.base, s.str("path"), s.str("codec"), s.str("decoder"), s["delayMs"], s["underruns"])
	}

	var pts []jitterPoint
	wk.call("POST", "/execute/async", map[string]any{
		"script": fmt.Sprintf("const done = arguments[arguments.length - 1]; (%s)(false).then(done, (e) => done(String(e)));", jitterSim),
		"args":   []any{},
	}, &pts)
	checkJitter(t, "WebKit", false, pts)
}
