package browsertest

import (
	"context"

	"github.com/pentecost/pentecost/processor"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// screenshotDir is where TestBrowserScreenshots writes when
// PENTECOST_SCREENSHOTS=1: the folder the README and docs/webapps.md show.
// Otherwise it writes to a temporary folder, so the test still runs without
// touching the tree.
const screenshotDir = "../../docs/screenshots"

func emulateScheme(dark bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v := "light"
		if dark {
			v = "dark"
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}},
		})
		return err
	})
}

type size struct {
	name          string
	width, height int64
	mobile        bool
}

func (s size) widthPx() int  { return int(s.width) }
func (s size) heightPx() int { return int(s.height) }

var (
	phone   = size{"phone", 390, 844, true}
	desktop = size{"desktop", 1280, 800, false}
)

// shot writes a full-page PNG of p at the given size.
func shot(t *testing.T, p *page, dir, name string, sz size, dark bool) string {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if sz.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	p.do(chromedp.EmulateViewport(sz.width, sz.height, opts...), emulateScheme(dark))
	// Let layout and paint settle: two animation frames.
	eval[bool](p, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise)
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	file := filepath.Join(dir, name+"-"+sz.name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestBrowserScreenshots takes pictures of both apps at phone and desktop
// sizes, in their main states. With PENTECOST_SCREENSHOTS=1 they go to
// docs/screenshots (commit them); otherwise to a temporary folder. When
// zbarimg is installed it also decodes the speaker's QR code from the
// picture.
func TestBrowserScreenshots(t *testing.T) {
	dir := t.TempDir()
	if os.Getenv("PENTECOST_SCREENSHOTS") == "1" {
		dir = screenshotDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)

	// The speaker app on a non-secure origin: the way to a microphone.
	insecure := b.tab("speaker-insecure")
	insecure.navigate(roomURL(n) + "/speak#token=" + n.token("pastor"))
	insecure.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	shot(t, insecure, dir, "speak-insecure", phone, false)

	// The speaker app before a broadcast.
	setup := b.tab("speaker-setup")
	setup.navigate(n.url + "/speak#token=" + n.token("pastor"))
	setup.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	for _, sz := range []size{phone, desktop} {
		shot(t, setup, dir, "speak-setup", sz, false)
	}

	// The speaker on the server machine (loopback), told its LAN address by
	// GET /links: the QR code carries the address phones in the room use.
	standIn := newLinksStandIn(t, n)
	standIn.answer("", "http://192.168.1.20:8080", "http://10.0.0.7:8080")
	sp, id := speakerAt(t, b, n, standIn.url, "en")

	// The join form with a typed ID.
	join := b.tab("listener-join")
	join.navigate(n.url + "/")
	join.do(chromedp.SendKeys(chromedp.ID("session-id"), id))
	for _, sz := range []size{phone, desktop} {
		shot(t, join, dir, "listen-join", sz, false)
	}

	en := listener(t, b, n, "listener-en", id, "en")
	es := listener(t, b, n, "listener-es", id, "es")
	waitPlaying(en, stats{}, 15*time.Second)
	waitPlaying(es, stats{}, 15*time.Second)
	sp.waitStats("two listeners", 10*time.Second, func(s stats) bool { return s.num("listenerCount") == 2 })
	sp.waitJS(`document.querySelectorAll('#distribution li').length === 2`, 5*time.Second)

	var live string
	for _, sz := range []size{phone, desktop} {
		live = shot(t, sp, dir, "speak-live", sz, false)
		shot(t, en, dir, "listen-live", sz, false)
	}
	shot(t, es, dir, "listen-live-es-untranslated", phone, false)
	shot(t, sp, dir, "speak-live-dark", phone, true)

	// The QR code in the picture carries the listener link.
	if zbar, err := exec.LookPath("zbarimg"); err == nil {
		out, err := exec.Command(zbar, "-q", "--raw", live).Output()
		if got, want := strings.TrimSpace(string(out)), "http://192.168.1.20:8080/listen/"+id; err != nil || got != want {
			t.Errorf("QR code in %s decodes to %q (%v), want %q", live, got, err, want)
		}
	} else {
		t.Log("zbarimg not installed: the QR code is not decoded from the screenshot")
	}

	// A phone on the room's Wi-Fi (a non-secure origin) with Spanish captions.
	capt := &captioner{}
	capt.finals.Store(true)
	stop := runProcessor(t, n, processor.Options{Languages: []string{"es"}, Translator: capt})
	room := listenerAt(t, b, roomURL(n), "listener-room", id, "es", asPhone)
	room.waitStats("captions", 20*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s.num("captionLines") >= 3 && s.str("captionLive") != ""
	})
	shot(t, room, dir, "listen-room-captions", phone, false)
	stop()

	// French served with captions only, the phone's voice reading them (a
	// stand-in speech engine with a French voice: headless Chromium has none).
	stopFr := captionsOnlyProcessor(t, n, &sentences{}, "fr")
	fr := listenerAt(t, b, roomURL(n), "listener-fr-voice", id, "fr", asPhone,
		injectScript(fakeSpeech(`[{name: 'Test Français', lang: 'fr-FR'}]`)))
	fr.waitStats("French captions", 20*time.Second, func(s stats) bool { return s["voiceOffered"] == true && s.num("captionLines") >= 2 })
	chooseMode(fr, "voice")
	fr.waitStats("the voice", 10*time.Second, func(s stats) bool { return s.num("voiceSpoken") >= 2 && s.num("captionLines") >= 4 })
	shot(t, fr, dir, "listen-voice", phone, false)
	stopFr()

	// Paused by the speaker, in the dark scheme.
	sp.click("pause")
	en.waitStats("paused", 5*time.Second, func(s stats) bool { return s.str("state") == "paused" })
	shot(t, en, dir, "listen-paused-dark", phone, true)

	// Ended.
	sp.click("end")
	sp.waitJS(`document.getElementById('end-dialog').open`, 5*time.Second)
	sp.click("end-confirm")
	en.waitStats("ended", 5*time.Second, func(s stats) bool { return s.str("state") == "ended" })
	shot(t, en, dir, "listen-ended", phone, false)
	t.Logf("screenshots in %s", dir)
}
