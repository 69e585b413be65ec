package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/testserver"
)

// A small W3C WebDriver client (https://www.w3.org/TR/webdriver2/): just the
// commands these tests use, over plain HTTP and JSON. It drives WebKitGTK's
// MiniBrowser through Debian's WebKitWebDriver, Safari's engine on Linux.

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

type wdSession struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT/session/ID
	hc   *http.Client
}

// wdCall sends one command; out receives the response's "value".
func wdCall(hc *http.Client, method, u string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, env.Value)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (s *wdSession) call(method, path string, body, out any) {
	s.t.Helper()
	if err := wdCall(s.hc, method, s.base+path, body, out); err != nil {
		s.t.Fatalf("webdriver: %v", err)
	}
}

func (s *wdSession) navigate(u string) { s.call("POST", "/url", map[string]string{"url": u}, nil) }

// exec runs a script (a function body: use return) and decodes its result.
func wdExec[T any](s *wdSession, script string, args ...any) T {
	s.t.Helper()
	if args == nil {
		args = []any{}
	}
	var v T
	s.call("POST", "/execute/sync", map[string]any{"script": script, "args": args}, &v)
	return v
}

// click clicks an element as a user would (a trusted event: audio may start).
func (s *wdSession) click(css string) {
	s.t.Helper()
	var el map[string]string
	s.call("POST", "/element", map[string]string{"using": "css selector", "value": css}, &el)
	s.call("POST", "/element/"+el[elementKey]+"/click", map[string]any{}, nil)
}

func (s *wdSession) stats() stats {
	s.t.Helper()
	return wdExec[stats](s, "return window.pentecostStats || {}")
}

func (s *wdSession) cspViolations() []string {
	s.t.Helper()
	return wdExec[[]string](s, "return (window.pentecostStats.cspViolations || [])")
}

func (s *wdSession) waitStats(what string, within time.Duration, ok func(stats) bool) stats {
	s.t.Helper()
	return pollStats(s.t, "webkit", what, within, ok, s.stats, func() string { return "" })
}

// webkitBinary is Debian's MiniBrowser (package webkit2gtk-driver pulls it in).
const webkitBinary = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"

// newWebKit starts WebKitWebDriver (and Xvfb when there is no display) and
// opens a MiniBrowser session whose requests go through proxy. It skips the
// test, saying why, when the engine is not installed.
func newWebKit(t *testing.T, proxy string) *wdSession {
	t.Helper()
	if os.Getenv(browserEnv) == "" {
		t.Skipf("browser tests skipped: set %s (the WebKitGTK tests run with the Chromium ones)", browserEnv)
	}
	driver, err := exec.LookPath("WebKitWebDriver")
	if err != nil {
		t.Skip("WebKitGTK tests skipped: WebKitWebDriver not installed (apt-get install webkit2gtk-driver)")
	}
	bin := os.Getenv("PENTECOST_TEST_WEBKIT")
	if bin == "" {
		bin = webkitBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("WebKitGTK tests skipped: no MiniBrowser at %s (set PENTECOST_TEST_WEBKIT)", bin)
	}
	display := os.Getenv("DISPLAY")
	if display == "" {
		display = startXvfb(t)
	}
	port := testserver.FreePort(t)
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if os.Getenv("PENTECOST_TEST_LOGS") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start WebKitWebDriver: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	hc := &http.Client{Timeout: 30 * time.Second}
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if wdCall(hc, "GET", root+"/status", nil, &st) == nil && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("WebKitWebDriver did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var sess struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "MiniBrowser",
		"webkitgtk:browserOptions": map[string]any{
			"binary": bin,
			"args":   []string{"--automation", "--autoplay-policy=allow", "--proxy=" + proxy},
		},
	}}}
	if err := wdCall(hc, "POST", root+"/session", caps, &sess); err != nil {
		t.Fatalf("WebKitWebDriver new session: %v", err)
	}
	s := &wdSession{t: t, base: root + "/session/" + sess.SessionID, hc: hc}
	t.Cleanup(func() { _ = wdCall(hc, "DELETE", s.base, nil, nil) })
	t.Logf("engine: WebKitGTK %v (MiniBrowser through WebKitWebDriver)", sess.Capabilities["browserVersion"])
	return s
}

// startXvfb runs a virtual display for the test and returns its name.
func startXvfb(t *testing.T) string {
	t.Helper()
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("WebKitGTK tests skipped: no DISPLAY and no Xvfb (apt-get install xvfb)")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1280x900x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb gave no display number: %v", err)
	}
	return ":" + strings.TrimSpace(line)
}

// loopbackProxy is an HTTP proxy that sends every request, whatever its
// host, to the node: so WebKit can open http://pentecost.test:PORT (a
// non-secure origin) with no hosts-file entry, and its traffic stays on
// 127.0.0.1. It handles CONNECT tunnels and absolute-form requests (with
// WebSocket upgrades).
func loopbackProxy(t *testing.T, n *node) string {
	t.Helper()
	target, _ := url.Parse(n.url)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the page's own host: the origin check compares it with Origin
	}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			rp.ServeHTTP(w, r)
			return
		}
		up, err := net.DialTimeout("tcp", n.addr, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			return
		}
		down, rw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() { _, _ = io.Copy(up, rw); up.Close() }()
		go func() { _, _ = io.Copy(down, up); down.Close() }()
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return "http://" + l.Addr().String()
}
