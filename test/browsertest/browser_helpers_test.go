package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/server"
)

// The browser tests drive the real apps in headless Chromium against a real
// node with a real clock. They run when PENTECOST_TEST_BROWSER names the
// browser binary (.ci/run sets it to /usr/bin/chromium).

const browserEnv = "PENTECOST_TEST_BROWSER"

func browserPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(browserEnv)
	if p == "" {
		t.Skipf("browser tests skipped: set %s to a Chromium binary (for example /usr/bin/chromium) to run them", browserEnv)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v", browserEnv, p, err)
	}
	return p
}

// node is one running server.
type node struct {
	t    *testing.T
	srv  *server.Server
	addr string // 127.0.0.1:port
	url  string // http://127.0.0.1:port
	dir  string
	done chan struct{}
	once sync.Once
}

// startNode runs a node on addr ("127.0.0.1:0" for any port) with its state
// in dir, using the built-in token issuer (its key lives in dir, so a
// restarted node accepts the same tokens).
func startNode(t *testing.T, addr, dir string, mutate func(*server.Config)) *node {
	t.Helper()
	return startNodeWith(t, addr, dir, mutate, nil)
}

// startNodeWith is startNode with the server's options changed by opts (the
// network interfaces GET /links reports, say).
func startNodeWith(t *testing.T, addr, dir string, mutate func(*server.Config), opts func(*server.Options)) *node {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = dir
	cfg.ShutdownGrace = 300 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("PENTECOST_TEST_LOGS") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	o := server.Options{Clock: clockwork.NewRealClock(), Logger: log}
	if opts != nil {
		opts(&o)
	}
	srv, err := server.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	var l net.Listener
	for i := 0; ; i++ {
		l, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if i == 50 {
			_ = srv.Shutdown(context.Background())
			t.Fatalf("listen on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond) // the port of a node just stopped
	}
	bound := l.Addr().(*net.TCPAddr)
	reach := bound.String()
	if bound.IP.IsUnspecified() {
		// Bound to every interface (as serve is by default); the browser
		// still talks to it on loopback.
		reach = net.JoinHostPort("127.0.0.1", strconv.Itoa(bound.Port))
	}
	n := &node{t: t, srv: srv, addr: reach, url: "http://" + reach, dir: dir, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(n.stop)
	return n
}

// stop shuts the node down like SIGTERM does (idempotent).
func (n *node) stop() {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		select {
		case <-n.done:
		case <-ctx.Done():
		}
	})
}

func (n *node) token(sub string) string {
	n.t.Helper()
	tok, err := n.srv.Auth.Mint(sub, time.Hour, false)
	if err != nil {
		n.t.Fatalf("mint: %v", err)
	}
	return tok
}

// browser is one headless Chromium.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts headless Chromium; extra adds flags (for example the
// host-resolver rules that put a page on a non-secure origin).
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	bin := browserPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Several tabs play at once; none of them may be throttled as a
		// background tab.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Logf("engine: Chromium (%s)", bin)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &browser{t: t, ctx: ctx}
}

// page is one tab.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

// tab opens a new tab (the first call uses the browser's first tab).
func (b *browser) tab(name string) *page {
	b.t.Helper()
	p := &page{t: b.t, name: name}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(p.listen))
	b.t.Cleanup(cancel)
	p.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open tab: %v", name, err)
	}
	return p
}

func (p *page) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if a.Value != nil {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "exception: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	p.mu.Lock()
	p.logs = append(p.logs, line)
	p.mu.Unlock()
}

// log returns what the page logged, for failure messages.
func (p *page) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage log:\n%s\nstats: %s", p.name, err, p.log(), p.statsJSON())
	}
}

func (p *page) navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
	p.waitJS("window.pentecostStats && window.pentecostStats.ready === true", 10*time.Second)
}

func (p *page) click(id string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.ID(id), chromedp.NodeVisible))
}

// eval evaluates expr and decodes its JSON value into T.
func eval[T any](p *page, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v\npage log:\n%s", p.name, expr, err, p.log())
	}
	return v
}

type stats map[string]any

func (s stats) num(k string) float64 {
	f, _ := s[k].(float64)
	return f
}

func (s stats) str(k string) string {
	v, _ := s[k].(string)
	return v
}

func (p *page) stats() stats {
	p.t.Helper()
	return eval[stats](p, "window.pentecostStats || {}")
}

func (p *page) statsJSON() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte]("window.pentecostStats || {}"))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return string(b)
}

// waitJS polls a JavaScript condition until it is true or the deadline
// passes. The browser is another process, so polling with a deadline is the
// way to wait for it.
func (p *page) waitJS(cond string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	expr := "Boolean(" + cond + ")"
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out after %v waiting for %s (last error: %v)\nstats: %s\npage log:\n%s",
				p.name, within, cond, err, p.statsJSON(), p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStats polls pentecostStats until ok accepts it.
func (p *page) waitStats(what string, within time.Duration, ok func(stats) bool) stats {
	p.t.Helper()
	return pollStats(p.t, p.name, what, within, ok, p.stats, func() string { return "\npage log:\n" + p.log() })
}

// pollStats polls get (an engine's pentecostStats) every 100 ms until ok
// accepts it, and fails the test after within, naming who (the page or
// engine) and what it waited for, with the last stats and dump's text
// (the page log, when the engine has one).
func pollStats(t testing.TB, who, what string, within time.Duration, ok func(stats) bool, get func() stats, dump func() string) stats {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := get()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(s)
			t.Fatalf("%s: timed out after %v waiting for %s\nstats: %s%s", who, within, what, b, dump())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text returns the text of the element with the given id.
func (p *page) text(id string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf("document.getElementById(%q).textContent.trim()", id))
}

// createOverHTTP creates a session with POST /sessions, as a speaker's
// scheduling tool would, and returns its ID.
func createOverHTTP(t *testing.T, n *node, lang string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url+"/sessions", strings.NewReader(`{"sourceLanguage":"`+lang+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token("pastor"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /sessions: %d %v", resp.StatusCode, err)
	}
	return body.SessionID
}

// checkClean fails the test if a page threw an uncaught exception or the
// Content-Security-Policy blocked something.
func checkClean(t *testing.T, pages ...*page) {
	t.Helper()
	for _, p := range pages {
		if log := p.log(); strings.Contains(log, "exception:") {
			t.Errorf("%s threw:\n%s", p.name, log)
		}
		if v := eval[[]string](p, "(window.pentecostStats && window.pentecostStats.cspViolations) || []"); len(v) > 0 {
			t.Errorf("%s: the CSP blocked %v", p.name, v)
		}
	}
}

// unlabeled lists the form controls and buttons of the page that a screen
// reader could not name.
func unlabeled(p *page) []string {
	return eval[[]string](p, `(() => {
		const out = [];
		for (const el of document.querySelectorAll('input, select, textarea, button, [role=meter]')) {
			if (el.closest('[hidden]') || el.closest('dialog:not([open])')) continue; // not shown, not read
			const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') ||
				el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim() !== '');
			if (!named) out.push(el.id || el.outerHTML.slice(0, 60));
		}
		return out;
	})()`)
}

func checkLabels(t *testing.T, p *page) {
	t.Helper()
	if u := unlabeled(p); len(u) > 0 {
		t.Errorf("%s: controls without an accessible name: %v", p.name, u)
	}
}

// runProcessor runs the reference processor against n with o (its server
// and a processor token filled in) until stop, or the end of the test.
// stop detaches it and may be called more than once.
func runProcessor(t *testing.T, n *node, o processor.Options) (stop func()) {
	t.Helper()
	tok, err := n.srv.Auth.Mint("translator", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	o.Server, o.Token = n.url, processor.StaticToken(tok)
	eng, err := processor.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = eng.Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// engine is what playsTone needs of a browser other than Chromium: Firefox
// (WebDriver BiDi) or WebKit (WebDriver).
type engine interface {
	click(css string)
	waitStats(what string, within time.Duration, ok func(stats) bool) stats
	cspViolations() []string
}

// playsTone presses Listen on the listener app loaded from base, waits
// until it has played audio (not silence), and checks the playback path,
// the codec and its decoder, and that the CSP blocked nothing.
func playsTone(t *testing.T, e engine, base, path, codec, decoder string) stats {
	t.Helper()
	e.click("#listen")
	s := e.waitStats("audio played", 20*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s.num("samplesPlayed") >= 8000 && s.num("playedPeak") > 0.01
	})
	if s.str("path") != path {
		t.Errorf("%s: playback path %q, want %q", base, s.str("path"), path)
	}
	if s.str("codec") != codec || s.str("decoder") != decoder {
		t.Errorf("%s: codec %q decoded by %q, want %s by %s", base, s.str("codec"), s.str("decoder"), codec, decoder)
	}
	if v := e.cspViolations(); len(v) > 0 {
		t.Errorf("%s: the CSP blocked %v", base, v)
	}
	return s
}
