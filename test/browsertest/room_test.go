package browsertest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pentecost/pentecost/internal/lan"
	"github.com/pentecost/pentecost/server"
)

// roomInterfaces is a machine on the venue's Wi-Fi and a wired network, as
// GET /links sees it (the test's own interfaces would vary by machine).
func roomInterfaces(o *server.Options) {
	up := net.FlagUp | net.FlagRunning
	o.Interfaces = func() ([]lan.Interface, error) {
		return []lan.Interface{
			{Name: "lo", Index: 1, Flags: up | net.FlagLoopback, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
			{Name: "wlan0", Index: 2, Flags: up, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.20")}},
			{Name: "eth0", Index: 3, Flags: up, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.7")}},
		}, nil
	}
}

// TestBrowserShareLinksServer: the same, against the server's own GET /links
// (interfaces injected): the speaker page on 127.0.0.1 offers the LAN
// addresses with the node's port.
func TestBrowserShareLinksServer(t *testing.T) {
	b := newBrowser(t)
	// Bound to every interface, as `serve` is by default: only then are the
	// LAN addresses ways to reach it.
	n := startNodeWith(t, "0.0.0.0:0", t.TempDir(), nil, roomInterfaces)
	sp, id := speaker(t, b, n, "en")
	_, port, _ := net.SplitHostPort(n.addr)
	sp.waitStats("LAN links", 5*time.Second, func(s stats) bool { return s.str("linkSource") == "lan" })
	bases := eval[[]string](sp, "window.pentecostStats.linkBases")
	if len(bases) < 2 || bases[0] != "http://192.168.1.20:"+port {
		t.Fatalf("link bases %v, want http://192.168.1.20:%s first and the others after", bases, port)
	}
	if got, want := eval[string](sp, "document.getElementById('link').value"), "http://192.168.1.20:"+port+"/listen/"+id; got != want {
		t.Errorf("link %q, want %q", got, want)
	}
	if eval[bool](sp, "document.getElementById('link-choice').hidden") || !eval[bool](sp, "document.getElementById('link-warning').hidden") {
		t.Error("want the address choice and no warning")
	}
	checkClean(t, sp)
}

// The room, not localhost: a phone on the venue's Wi-Fi opens
// http://192.168.1.20:8080, which is not a secure context. Chromium maps a
// test name to loopback, so the page is on a non-secure origin while the
// traffic stays on 127.0.0.1.

const roomHost = "pentecost.test"

func roomBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	return newBrowser(t, append([]chromedp.ExecAllocatorOption{
		chromedp.Flag("host-resolver-rules", "MAP "+roomHost+" 127.0.0.1"),
	}, extra...)...)
}

// roomURL is the node's address as a phone in the room would have it.
func roomURL(n *node) string {
	_, port, _ := net.SplitHostPort(n.addr)
	return "http://" + roomHost + ":" + port
}

// asPhone emulates a 390×844 touch phone (before the page loads).
func asPhone(p *page) {
	p.do(chromedp.EmulateViewport(phone.width, phone.height, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
}

// noOverflow fails if the page scrolls sideways (a layout too wide for a phone).
func noOverflow(t *testing.T, p *page) {
	t.Helper()
	if w := eval[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("%s: the page is %d px wide in a %d px viewport", p.name, w[0], w[1])
	}
}

// TestBrowserInsecureOrigin: the listener app plays on a non-secure origin
// at phone size (no AudioWorklet there: the scheduled path), through the
// <audio> element; the speaker app there explains the two ways to a
// microphone, in the UI's language, and does not offer to start.
func TestBrowserInsecureOrigin(t *testing.T) {
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	room := roomURL(n)
	_, id := speaker(t, b, n, "en") // the speaker on the server machine (localhost)

	li := listenerAt(t, b, room, "phone-listener", id, "es", asPhone)
	if secure := eval[bool](li, "window.isSecureContext"); secure {
		t.Fatalf("%s is a secure context: the test does not test what it should", room)
	}
	s := waitPlaying(li, stats{}, 20*time.Second)
	if s.str("path") != "scheduled" || s["audioElementPlaying"] != true {
		t.Errorf("want the scheduled path through a playing <audio> element, stats %v", s)
	}
	if eval[bool](li, "typeof new AudioContext().audioWorklet !== 'undefined'") {
		t.Errorf("AudioWorklet exists on a non-secure origin: the fallback path is not exercised")
	}
	// The delay shows, and the activity indicator moves.
	li.waitStats("activity and delay", 10*time.Second, func(s stats) bool { return s.num("level") > 0 && s.num("delayMs") > 0 })
	li.waitJS(`/\d+ ms/.test(document.getElementById('delay').textContent)`, 5*time.Second)
	noOverflow(t, li)
	checkLabels(t, li)

	// The speaker app on the same origin: no microphone there.
	sp := b.tab("phone-speaker")
	asPhone(sp)
	sp.navigate(room + "/speak#token=" + n.token("pastor"))
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	sp.do(chromedp.SetValue(chromedp.ID("ui-lang"), "es"), chromedp.Evaluate[chromedp.Void](
		`document.getElementById('ui-lang').dispatchEvent(new Event('change'))`))
	if eval[bool](sp, "document.getElementById('insecure').hidden") {
		t.Fatal("no explanation on a non-secure origin")
	}
	_, port, _ := net.SplitHostPort(n.addr)
	if txt := sp.text("insecure"); !strings.Contains(txt, "http://localhost:"+port+"/speak") || !strings.Contains(txt, "HTTPS") ||
		!strings.Contains(txt, "micrófono") {
		t.Errorf("the explanation (Spanish UI) does not name both ways out: %q", txt)
	}
	if !eval[bool](sp, "document.getElementById('start').disabled") {
		t.Error("Start broadcast is offered where the microphone cannot work")
	}
	noOverflow(t, sp)
	checkClean(t, li, sp)
}

// linksStandIn serves GET /links (the server's answer is in acme's part of
// the work; this is the contract the page is written to) and proxies
// everything else, WebSockets included, to the node.
type linksStandIn struct {
	mu   sync.Mutex
	body string
	url  string
}

func newLinksStandIn(t *testing.T, n *node) *linksStandIn {
	t.Helper()
	target, _ := url.Parse(n.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	s := &linksStandIn{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /links", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(s.body))
	})
	mux.Handle("/", rp)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "http://" + l.Addr().String()
	return s
}

func (s *linksStandIn) answer(publicURL string, lan ...string) {
	if lan == nil {
		lan = []string{}
	}
	b, _ := json.Marshal(map[string]any{"publicUrl": publicURL, "lanUrls": lan})
	s.mu.Lock()
	s.body = string(b)
	s.mu.Unlock()
}

// TestBrowserShareLinks: the QR code and the copy link use the public URL;
// else, on a loopback page, the LAN addresses (first chosen, the others a
// click away), with a warning when there is only loopback.
func TestBrowserShareLinks(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	standIn := newLinksStandIn(t, n)
	live := func(name string) (*page, string) {
		t.Helper()
		p := b.tab(name)
		p.navigate(standIn.url + "/speak#token=" + n.token("pastor"))
		p.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
		p.click("start")
		s := p.waitStats("on air", 15*time.Second, func(s stats) bool { return s.str("state") == "live" && s.str("sessionId") != "" })
		id := s.str("sessionId")
		p.waitJS(fmt.Sprintf("document.getElementById('link').value.endsWith('/listen/%s')", id), 5*time.Second)
		return p, id
	}
	link := func(p *page) string { return eval[string](p, "document.getElementById('link').value") }
	qrLabel := func(p *page) string {
		return eval[string](p, "(document.querySelector('#qr svg') || {getAttribute: () => ''}).getAttribute('aria-label') || ''")
	}
	shown := func(p *page, id string) bool {
		return !eval[bool](p, fmt.Sprintf("document.getElementById(%q).hidden", id))
	}

	// LAN addresses: the first is chosen, the second a click away.
	standIn.answer("", "http://192.168.1.20:8080", "http://10.0.0.7:8080")
	lan, id := live("lan")
	if got, want := link(lan), "http://192.168.1.20:8080/listen/"+id; got != want {
		t.Errorf("LAN link %q, want %q", got, want)
	}
	if !strings.Contains(qrLabel(lan), "192.168.1.20:8080/listen/"+id) {
		t.Errorf("the QR code is not of the LAN link: %q", qrLabel(lan))
	}
	if !shown(lan, "link-choice") || shown(lan, "link-warning") {
		t.Error("want the address choice and no warning")
	}
	lan.do(chromedp.SetValue(chromedp.ID("link-address"), "http://10.0.0.7:8080"), chromedp.Evaluate[chromedp.Void](
		`document.getElementById('link-address').dispatchEvent(new Event('change'))`))
	if got, want := link(lan), "http://10.0.0.7:8080/listen/"+id; got != want {
		t.Errorf("after choosing the second address: %q, want %q", got, want)
	}
	if !strings.Contains(qrLabel(lan), "10.0.0.7:8080") {
		t.Errorf("the QR code did not follow the choice: %q", qrLabel(lan))
	}
	checkLabels(t, lan)

	// Only loopback: the page's own address, with a visible warning.
	standIn.answer("")
	lo, id := live("loopback")
	if got, want := link(lo), standIn.url+"/listen/"+id; got != want {
		t.Errorf("loopback-only link %q, want %q", got, want)
	}
	if !shown(lo, "link-warning") || !strings.Contains(lo.text("link-warning"), standIn.url) {
		t.Errorf("no warning for a loopback-only link: %q", lo.text("link-warning"))
	}

	// A public URL wins over everything.
	standIn.answer("https://pentecost.example/", "http://192.168.1.20:8080")
	pub, id := live("public")
	if got, want := link(pub), "https://pentecost.example/listen/"+id; got != want {
		t.Errorf("public link %q, want %q", got, want)
	}
	if shown(pub, "link-choice") || shown(pub, "link-warning") {
		t.Error("a public URL needs no choice and no warning")
	}
	checkClean(t, lan, lo, pub)
}

// TestBrowserSpeakerOnPhone: before going live, a microphone test shows the
// level and the device can be chosen; on air, at phone size, the level,
// Pause, Mute and End are on screen without scrolling; while the speaker is
// disconnected, the listener figures are greyed and marked stale.
func TestBrowserSpeakerOnPhone(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	n := startNode(t, "127.0.0.1:0", dir, nil)
	sp := b.tab("speaker-phone")
	asPhone(sp)
	sp.navigate(n.url + "/speak#token=" + n.token("pastor"))
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	if !eval[bool](sp, "document.getElementById('insecure').hidden") {
		t.Error("the insecure-origin note shows on localhost")
	}
	sp.click("mic-test")
	sp.waitStats("the microphone test", 10*time.Second, func(s stats) bool { return s["micTesting"] == true && s.num("level") > 0 })
	// The device list fills in once the browser has granted the microphone
	// and enumerated its devices, which may come after the first level.
	sp.waitJS("document.getElementById('mic-device').options.length >= 2", 10*time.Second)
	if got := sp.text("mic-test"); got != "Stop the test" {
		t.Errorf("mic test button %q while testing", got)
	}
	checkLabels(t, sp)
	sp.click("start")
	sp.waitStats("on air", 15*time.Second, func(s stats) bool { return s.str("state") == "live" && s.num("chunksSent") >= 5 })
	id := sp.stats().str("sessionId")
	// Whatever the speaker must reach while on air is in the first screen.
	off := eval[[]string](sp, `(() => {
		window.scrollTo(0, 0);
		const out = [];
		for (const id of ['level', 'pause', 'mute', 'end']) {
			const r = document.getElementById(id).getBoundingClientRect();
			if (r.height === 0 || r.top < 0 || r.bottom > window.innerHeight) out.push(id + ' ' + Math.round(r.top) + '-' + Math.round(r.bottom));
		}
		return out;
	})()`)
	if len(off) > 0 {
		t.Errorf("not on screen without scrolling (viewport %d px): %v", phone.height, off)
	}
	noOverflow(t, sp)

	li := listener(t, b, n, "listener", id, "en")
	waitPlaying(li, stats{}, 15*time.Second)
	sp.waitStats("one listener", 10*time.Second, func(s stats) bool { return s.num("listenerCount") == 1 && s["countStale"] == false })
	if eval[string](sp, "document.getElementById('listeners').dataset.stale") != "false" {
		t.Error("fresh figures marked stale")
	}
	n.stop()
	sp.waitStats("stale figures while reconnecting", 10*time.Second, func(s stats) bool {
		return s.str("state") == "reconnecting" && s["countStale"] == true
	})
	if eval[string](sp, "document.getElementById('listeners').dataset.stale") != "true" ||
		eval[bool](sp, "document.getElementById('count-stale').hidden") {
		t.Error("the listener figures are not marked stale while disconnected")
	}
	if got := sp.text("listener-count"); !strings.Contains(got, "1") {
		t.Errorf("the last known count is gone: %q", got)
	}
	startNode(t, n.addr, dir, nil)
	sp.waitStats("fresh figures after reconnecting", 20*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s["countStale"] == false
	})
	checkClean(t, sp, li)
}
