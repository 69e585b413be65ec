package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A small WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/):
// just the commands these tests use, as JSON over one WebSocket. Firefox
// serves BiDi itself when started with --remote-debugging-port, so it needs
// no geckodriver.

// bidiError is an error answer to a command.
type bidiError struct {
	Method  string
	Code    string // "no such element", "invalid argument", ...
	Message string
}

func (e *bidiError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Method, e.Code, e.Message) }

// bidiConn is one BiDi connection: commands get answers matched by id; the
// events subscribed to (log entries) are kept for failure messages.
type bidiConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time

	mu      sync.Mutex
	nextID  int
	pending map[int]chan bidiMessage
	logs    []bidiLog
	err     error // why the read loop ended
	done    chan struct{}
}

type bidiMessage struct {
	Type    string          `json:"type"` // "success", "error" or "event"
	ID      *int            `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Method  string          `json:"method"` // events
	Params  json.RawMessage `json:"params"` // events
}

// bidiLog is a log.entryAdded event: "console" entries and "javascript"
// ones (uncaught errors).
type bidiLog struct {
	Type  string `json:"type"`
	Level string `json:"level"`
	Text  string `json:"text"`
}

func dialBiDi(ctx context.Context, url string) (*bidiConn, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &bidiConn{ws: ws, pending: map[int]chan bidiMessage{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *bidiConn) read() {
	defer close(c.done)
	for {
		var m bidiMessage
		if err := c.ws.ReadJSON(&m); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		switch {
		case m.ID != nil:
			if ch := c.pending[*m.ID]; ch != nil {
				delete(c.pending, *m.ID)
				ch <- m
			}
		case m.Method == "log.entryAdded":
			var l bidiLog
			if json.Unmarshal(m.Params, &l) == nil {
				c.logs = append(c.logs, l)
			}
		}
		c.mu.Unlock()
	}
}

// call sends a command and decodes its result into out (when not nil).
func (c *bidiConn) call(ctx context.Context, method string, params, out any) error {
	if params == nil {
		params = map[string]any{}
	}
	ch := make(chan bidiMessage, 1)
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := c.ws.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Type == "error" {
			return &bidiError{Method: method, Code: m.Error, Message: m.Message}
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				return fmt.Errorf("%s: decode %s: %w", method, m.Result, err)
			}
		}
		return nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("%s: connection lost: %w", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// logText is what the pages logged, for failure messages.
func (c *bidiConn) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.logs {
		fmt.Fprintf(&b, "%s.%s: %s\n", l.Type, l.Level, l.Text)
	}
	return b.String()
}

// uncaught lists the pages' uncaught errors ("javascript" log entries).
func (c *bidiConn) uncaught() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.logs {
		if l.Type == "javascript" {
			out = append(out, l.Text)
		}
	}
	return out
}

func (c *bidiConn) close() {
	_ = c.ws.Close()
	<-c.done
}

// firefox is one headless Firefox driven over BiDi, with one tab.
type firefox struct {
	t       *testing.T
	c       *bidiConn
	context string // the tab's browsing context
}

// ffPrefs is the test profile's user.js. The intent is the Chromium flags':
// no first-run or default-browser pages, no telemetry, updates or other
// background traffic (the machine has no network), audio may start without
// a gesture, and the test host name is loopback.
var ffPrefs = map[string]any{
	"browser.shell.checkDefaultBrowser":           false,
	"browser.startup.homepage_override.mstone":    "ignore",
	"browser.startup.page":                        0,
	"startup.homepage_welcome_url":                "about:blank",
	"startup.homepage_welcome_url.additional":     "",
	"browser.aboutwelcome.enabled":                false,
	"browser.newtabpage.enabled":                  false,
	"browser.sessionstore.resume_from_crash":      false,
	"toolkit.startup.max_resumed_crashes":         -1,
	"datareporting.policy.dataSubmissionEnabled":  false,
	"datareporting.healthreport.uploadEnabled":    false,
	"toolkit.telemetry.enabled":                   false,
	"toolkit.telemetry.unified":                   false,
	"toolkit.telemetry.archive.enabled":           false,
	"app.update.disabledForTesting":               true,
	"app.normandy.enabled":                        false,
	"app.normandy.api_url":                        "",
	"app.shield.optoutstudies.enabled":            false,
	"messaging-system.rsexperimentloader.enabled": false,
	"services.settings.server":                    "data:,",
	"extensions.update.enabled":                   false,
	"extensions.getAddons.cache.enabled":          false,
	"extensions.blocklist.enabled":                false,
	"browser.safebrowsing.malware.enabled":        false,
	"browser.safebrowsing.phishing.enabled":       false,
	"browser.safebrowsing.downloads.enabled":      false,
	"browser.safebrowsing.blockedURIs.enabled":    false,
	"browser.search.update":                       false,
	"browser.urlbar.suggest.searches":             false,
	"browser.topsites.contile.enabled":            false,
	"network.captive-portal-service.enabled":      false,
	"network.connectivity-service.enabled":        false,
	"network.dns.disablePrefetch":                 true,
	"network.prefetch-next":                       false,
	"network.http.speculative-parallel-limit":     0,
	"network.proxy.type":                          0,
	"dom.push.connection.enabled":                 false,
	"intl.accept_languages":                       "en-US",
	"intl.locale.requested":                       "en-US",
	// Audio plays without a gesture, as Chromium's
	// --autoplay-policy=no-user-gesture-required (the test clicks anyway).
	"media.autoplay.default":         0,
	"media.autoplay.blocking_policy": 0,
	// Every host name is loopback (Chromium's --host-resolver-rules), so
	// http://pentecost.test:PORT is a non-secure origin on the test node.
	"network.dns.forceResolve": "127.0.0.1",
	// A phone reaches the node by its IP address, which HTTPS-First leaves
	// alone; the test's host name would otherwise be tried over HTTPS first.
	"dom.security.https_first":            false,
	"dom.security.https_first_schemeless": false,
	"dom.security.https_only_mode":        false,
}

// firefoxBinary finds Firefox: PENTECOST_TEST_FIREFOX, else firefox-esr or
// firefox on the PATH.
func firefoxBinary() (string, bool) {
	if p := os.Getenv("PENTECOST_TEST_FIREFOX"); p != "" {
		return p, true
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// newFirefox starts headless Firefox with a fresh profile, connects to its
// WebDriver BiDi endpoint and opens a session. It skips the test, saying
// what is missing, when Firefox is not installed or BiDi does not come up.
func newFirefox(t *testing.T) *firefox {
	t.Helper()
	if os.Getenv(browserEnv) == "" {
		t.Skipf("browser tests skipped: set %s (the Firefox test runs with the Chromium ones)", browserEnv)
	}
	bin, ok := firefoxBinary()
	if !ok {
		t.Skip("Firefox test skipped: no firefox-esr or firefox on the PATH (apt-get install firefox-esr, or set PENTECOST_TEST_FIREFOX)")
	}
	profile := t.TempDir()
	var js strings.Builder
	for k, v := range ffPrefs {
		b, _ := json.Marshal(v)
		fmt.Fprintf(&js, "user_pref(%q, %s);\n", k, b)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(js.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	pulse := startPulse(t)

	// Port 0: Firefox picks a free port and says which on stderr.
	cmd := exec.Command(bin, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0", "about:blank")
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "PULSE_SERVER="+pulse)
	// A pipe of our own rather than StderrPipe: its reader must not race
	// with Wait, and it ends when Firefox and its children are gone.
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderrW
	err = cmd.Start()
	stderrW.Close()
	if err != nil {
		stderr.Close()
		t.Skipf("Firefox test skipped: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var f *firefox
	t.Cleanup(func() {
		// browser.close ends Firefox cleanly (its content processes too);
		// kill it if it does not, or if there is no session to ask.
		grace := time.Duration(0)
		if f != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = f.c.call(ctx, "browser.close", nil, nil)
			cancel()
			f.c.close()
			grace = 10 * time.Second
		}
		select {
		case <-exited:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Read stderr for the BiDi line, keeping the rest for the skip message;
	// after it, stderr is drained (to ours with PENTECOST_TEST_LOGS).
	found := make(chan string, 1)
	var tailMu sync.Mutex
	var tail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := bidiListening.FindStringSubmatch(line); m != nil {
				found <- m[1]
				break
			}
			tailMu.Lock()
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			tailMu.Unlock()
		}
		w := io.Discard
		if os.Getenv("PENTECOST_TEST_LOGS") != "" {
			w = os.Stderr
		}
		_, _ = io.Copy(w, stderr)
		stderr.Close()
	}()
	const startup = 60 * time.Second // a cold start on a loaded 2-core machine
	var endpoint, why string
	select {
	case endpoint = <-found:
	case <-exited:
		why = "exited before serving WebDriver BiDi"
	case <-time.After(startup):
		why = fmt.Sprintf("did not serve WebDriver BiDi within %v", startup)
	}
	if endpoint == "" {
		tailMu.Lock()
		defer tailMu.Unlock()
		t.Skipf("Firefox test skipped: %s %s (no \"WebDriver BiDi listening on\" line on stderr); its stderr:\n%s",
			bin, why, strings.Join(tail, "\n"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialBiDi(ctx, endpoint+"/session")
	if err != nil {
		t.Fatalf("Firefox: connect to BiDi at %s/session: %v", endpoint, err)
	}
	var sess struct {
		SessionID    string `json:"sessionId"`
		Capabilities struct {
			BrowserName    string `json:"browserName"`
			BrowserVersion string `json:"browserVersion"`
		} `json:"capabilities"`
	}
	if err := c.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, &sess); err != nil {
		c.close()
		t.Fatalf("Firefox: %v", err)
	}
	f = &firefox{t: t, c: c}
	if err := c.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		t.Fatalf("Firefox: %v", err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := c.call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree); err != nil {
		t.Fatalf("Firefox: %v", err)
	}
	if len(tree.Contexts) > 0 {
		f.context = tree.Contexts[0].Context
	} else {
		var tab struct {
			Context string `json:"context"`
		}
		if err := c.call(ctx, "browsingContext.create", map[string]any{"type": "tab"}, &tab); err != nil {
			t.Fatalf("Firefox: %v", err)
		}
		f.context = tab.Context
	}
	name := "Firefox"
	if strings.Contains(sess.Capabilities.BrowserVersion, "esr") || strings.Contains(bin, "esr") {
		name = "Firefox ESR"
	}
	t.Logf("engine: %s %s (WebDriver BiDi, %s)", name, strings.TrimSuffix(sess.Capabilities.BrowserVersion, "esr"), bin)
	return f
}

// call runs one command with a deadline and fails the test on an error.
func (f *firefox) call(method string, params, out any) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.c.call(ctx, method, params, out); err != nil {
		f.t.Fatalf("Firefox: %v\npage log:\n%s", err, f.c.logText())
	}
}

// navigate loads u and waits for the load event.
func (f *firefox) navigate(u string) {
	f.t.Helper()
	f.call("browsingContext.navigate", map[string]any{"context": f.context, "url": u, "wait": "complete"}, nil)
}

// setViewport sizes the page's viewport (CSS pixels), as a phone's.
func (f *firefox) setViewport(sz size) {
	f.t.Helper()
	f.call("browsingContext.setViewport", map[string]any{
		"context":  f.context,
		"viewport": map[string]int{"width": sz.widthPx(), "height": sz.heightPx()},
	}, nil)
}

// ffEval evaluates a JavaScript expression in the page (a promise is
// awaited) and decodes its JSON value into T. The page serialises the
// value (JSON.stringify), which spares decoding BiDi's remote values.
func ffEval[T any](f *firefox, expr string) T {
	f.t.Helper()
	var v T
	if err := f.evalInto(expr, &v); err != nil {
		f.t.Fatalf("Firefox: evaluate %s: %v\npage log:\n%s", expr, err, f.c.logText())
	}
	return v
}

func (f *firefox) evalInto(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res struct {
		Type   string `json:"type"` // "success" or "exception"
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := f.c.call(ctx, "script.callFunction", map[string]any{
		"functionDeclaration": "async function() { const v = await (" + expr + "); return v === undefined ? 'null' : JSON.stringify(v); }",
		"awaitPromise":        true,
		"target":              map[string]string{"context": f.context},
		"resultOwnership":     "none",
	}, &res)
	if err != nil {
		return err
	}
	if res.Type != "success" {
		return errors.New("threw: " + res.ExceptionDetails.Text)
	}
	var s string
	if err := json.Unmarshal(res.Result.Value, &s); err != nil {
		return fmt.Errorf("result %s: %w", res.Result.Value, err)
	}
	return json.Unmarshal([]byte(s), out)
}

// click clicks the element css selects with the mouse, as a user would: a
// trusted event, so the page may start audio.
func (f *firefox) click(css string) {
	f.t.Helper()
	var found struct {
		Nodes []struct {
			SharedID string `json:"sharedId"`
		} `json:"nodes"`
	}
	f.call("browsingContext.locateNodes", map[string]any{
		"context": f.context,
		"locator": map[string]string{"type": "css", "value": css},
	}, &found)
	if len(found.Nodes) == 0 {
		f.t.Fatalf("Firefox: no element %s", css)
	}
	el := map[string]string{"sharedId": found.Nodes[0].SharedID}
	// Input actions do not scroll: bring the element into view first.
	f.call("script.callFunction", map[string]any{
		"functionDeclaration": "function(el) { el.scrollIntoView({ block: 'center' }); }",
		"arguments":           []any{el},
		"awaitPromise":        false,
		"target":              map[string]string{"context": f.context},
	}, nil)
	f.call("input.performActions", map[string]any{
		"context": f.context,
		"actions": []any{map[string]any{
			"type":       "pointer",
			"id":         "mouse",
			"parameters": map[string]string{"pointerType": "mouse"},
			"actions": []any{
				map[string]any{"type": "pointerMove", "x": 0, "y": 0, "origin": map[string]any{"type": "element", "element": el}},
				map[string]any{"type": "pointerDown", "button": 0},
				map[string]any{"type": "pointerUp", "button": 0},
			},
		}},
	}, nil)
	f.call("input.releaseActions", map[string]any{"context": f.context}, nil)
}

func (f *firefox) stats() stats {
	f.t.Helper()
	return ffEval[stats](f, "window.pentecostStats || {}")
}

func (f *firefox) cspViolations() []string {
	f.t.Helper()
	return ffEval[[]string](f, "window.pentecostStats.cspViolations || []")
}

// waitStats polls pentecostStats until ok accepts it.
func (f *firefox) waitStats(what string, within time.Duration, ok func(stats) bool) stats {
	f.t.Helper()
	return pollStats(f.t, "Firefox", what, within, ok, f.stats, func() string { return "\npage log:\n" + f.c.logText() })
}

// startPulse runs a PulseAudio server of the test's own with one null sink
// and returns its address for PULSE_SERVER. Firefox plays audio only to an
// audio device: with none (a CI machine) an AudioContext never starts. The
// null sink consumes samples in real time, as a sound card does, and keeps
// the test's sound off the machine's speakers. It skips the test when
// PulseAudio is not installed.
func startPulse(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("pulseaudio")
	if err != nil {
		t.Skip("Firefox test skipped: no pulseaudio for Firefox's audio output (apt-get install --no-install-recommends pulseaudio)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "native")
	cmd := exec.Command(bin, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
		"--load=module-null-sink sink_name=pentecost",
		"--load=module-native-protocol-unix auth-anonymous=1 socket="+sock,
		"--log-target=stderr")
	// Its own home and runtime directory: no user configuration, cookie or
	// other server touched.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR="+dir, "XDG_CONFIG_HOME="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if os.Getenv("PENTECOST_TEST_LOGS") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pulseaudio: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			keepAwake(t, sock)
			return "unix:" + sock
		}
		select {
		case <-exited:
			t.Fatalf("pulseaudio exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pulseaudio did not listen on %s within 20s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepAwake plays silence into the null sink at 20 ms latency for the rest
// of the test. An idle null sink sleeps in 2 s blocks, so a new stream (the
// page's AudioContext) would wait up to 2 s to start; a sound card does not.
func keepAwake(t *testing.T, sock string) {
	t.Helper()
	bin, err := exec.LookPath("pacat")
	if err != nil {
		t.Skip("Firefox test skipped: no pacat (apt-get install pulseaudio-utils)")
	}
	zero, err := os.Open("/dev/zero") // silence in any PCM format
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close() // the child has its own copy
	cmd := exec.Command(bin, "--playback", "--raw", "--latency-msec=20", "--stream-name=keep-awake")
	cmd.Env = append(os.Environ(), "PULSE_SERVER=unix:"+sock)
	cmd.Stdin = zero
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pacat: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}
