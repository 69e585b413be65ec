package browsertest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/opus"
)

// TestBrowserOpus: the speaker app encodes Opus with WebCodecs; a listener
// on a secure origin decodes it with WebCodecs, one on a phone's plain-HTTP
// address with the vendored WASM decoder; both play it, at about a tenth of
// pcm16's bandwidth. On a server built without Opus the listeners get the
// speaker's Opus relayed; with Opus, as asked: the same either way.
func TestBrowserOpus(t *testing.T) {
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")
	s := sp.waitStats("Opus encoding", 10*time.Second, func(s stats) bool { return s.str("codec") != "" })
	if s.str("codec") != "opus" || s.str("encoder") != "webcodecs" || s.num("packetMs") != pentecost.DefaultPacketMs {
		t.Fatalf("speaker: codec %q, encoder %q, packetMs %v: Chromium's AudioEncoder should make the session Opus", s.str("codec"), s.str("encoder"), s["packetMs"])
	}

	secure := listener(t, b, n, "listener-webcodecs", id, "en")
	phone := listenerAt(t, b, roomURL(n), "listener-wasm", id, "es", asPhone)
	for _, c := range []struct {
		p       *page
		decoder string
	}{{secure, "webcodecs"}, {phone, "wasm"}} {
		s := waitPlaying(c.p, stats{}, 20*time.Second)
		if s.str("codec") != "opus" || s.str("decoder") != c.decoder {
			t.Errorf("%s: codec %q decoded by %q, want opus by %s (stats %v)", c.decoder, s.str("codec"), s.str("decoder"), c.decoder, s)
		}
		// What one listener costs: at most Opus's 24 kbit/s plus headers
		// (the fake microphone's beeps cost less than speech, its silences
		// a few bytes a packet), against 262 for pcm16; at least the
		// headers of 60 ms packets (2.1 kbit/s).
		before := c.p.stats()
		time.Sleep(3 * time.Second)
		after := c.p.stats()
		kbps := (after.num("bytesReceived") - before.num("bytesReceived")) * 8 / 3 / 1000
		if kbps < 2 || kbps > 45 {
			t.Errorf("%s listener receives %.1f kbit/s of audio, want at most Opus's 24 plus headers", c.decoder, kbps)
		}
		t.Logf("%s listener: %.1f kbit/s, %s path", c.decoder, kbps, after.str("path"))
	}
	if opus.Available {
		// The server converted nothing: the speaker's packets went out as
		// sent.
		if d := metric(t, n, `pentecost_codec_packets_total{op="encode"}`); d != 0 {
			t.Errorf("the server encoded %v packets for Opus listeners of an Opus speaker", d)
		}
	}

	// A listener that will not decode Opus (the override a phone's owner
	// can set: docs/webapps.md) asks for pcm16: a server with Opus decodes
	// the session for it; one without says what it sends, and the app
	// explains it cannot play that.
	set := b.tab("settings") // localStorage is the origin's: every tab's
	set.navigate(n.url + "/listen/" + id)
	set.do(chromedp.Evaluate[chromedp.Void](`localStorage.setItem('pentecost.opus', 'off')`))
	pcm := listener(t, b, n, "listener-pcm16", id, "en")
	if opus.Available {
		s := waitPlaying(pcm, stats{}, 20*time.Second)
		if s.str("codec") != "pcm16" || s.str("decoder") != "pcm16" {
			t.Errorf("pcm16 listener: codec %q decoded by %q", s.str("codec"), s.str("decoder"))
		}
		if d := metric(t, n, `pentecost_codec_packets_total{op="decode"}`); d == 0 {
			t.Error("no Opus packet decoded for the pcm16 listener")
		}
		checkClean(t, pcm)
	} else {
		s := pcm.waitStats("the player's refusal", 10*time.Second, func(s stats) bool { return s.str("codec") != "" })
		if s.str("codec") != "opus" {
			t.Errorf("pcm16 listener on a server without Opus: codec %q, want the session's opus", s.str("codec"))
		}
		pcm.waitJS(`document.body.innerText.includes('sends opus audio')`, 5*time.Second)
	}

	// A speaker app that does not encode Opus (the same override here; a
	// browser without AudioEncoder) sends pcm16; a phone still gets Opus
	// when the server has it, encoded there.
	sp2, id2 := speaker(t, b, n, "en")
	if s := sp2.stats(); s.str("codec") != "pcm16" || s.str("encoder") != "" {
		t.Errorf("speaker told not to use Opus: codec %q, encoder %q", s.str("codec"), s.str("encoder"))
	}
	ph2 := listenerAt(t, b, roomURL(n), "listener-of-pcm16", id2, "en", asPhone)
	s = waitPlaying(ph2, stats{}, 20*time.Second)
	want := map[bool]string{true: "opus", false: "pcm16"}[opus.Available]
	if s.str("codec") != want {
		t.Errorf("listener of a pcm16 speaker: codec %q, want %s", s.str("codec"), want)
	}
	if opus.Available && metric(t, n, `pentecost_codec_packets_total{op="encode"}`) == 0 {
		t.Error("no packet encoded for the Opus listener of a pcm16 speaker")
	}
	checkClean(t, sp, secure, phone, sp2, ph2)
}

// metric reads one counter (name with its labels, as printed) from the
// node's /metrics; 0 when it has not been counted yet.
func metric(t *testing.T, n *node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	return 0
}
