package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// newMux registers the apps next to stand-ins for the server's other routes,
// the way server.New does, so a pattern conflict panics here.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range []string{"GET /ws", "POST /sessions", "GET /sessions/{id}", "GET /languages", "GET /healthz", "GET /metrics"} {
		p := p
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("route " + p)) })
	}
	Register(mux)
	return mux
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRoutes(t *testing.T) {
	mux := newMux()
	for _, c := range []struct {
		target, ctype, body string
	}{
		{"/", "text/html; charset=utf-8", "/static/js/listen.js"},
		{"/listen/golden-eagle-427", "text/html; charset=utf-8", "/static/js/listen.js"},
		{"/speak", "text/html; charset=utf-8", "/static/js/speak.js"},
		{"/static/js/listen.js", "text/javascript; charset=utf-8", "import"},
		{"/static/worklets/playback.js", "text/javascript; charset=utf-8", "registerProcessor('pentecost-playback'"},
		{"/static/worklets/capture.js", "text/javascript; charset=utf-8", "registerProcessor('pentecost-capture'"},
		{"/static/css/app.css", "text/css; charset=utf-8", ":root"},
		{"/static/icon.svg", "image/svg+xml", "<svg"},
	} {
		w := get(t, mux, http.MethodGet, c.target)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.target, w.Code)
			continue
		}
		h := w.Header()
		if got := h.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.target, got, c.ctype)
		}
		if got := h.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: CSP %q", c.target, got)
		}
		if h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("GET %s: cache headers %q %q", c.target, h.Get("Cache-Control"), h.Get("ETag"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.target)
		}
		if !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("GET %s: body lacks %q", c.target, c.body)
		}
	}
	// The server's own routes are untouched.
	for _, target := range []string{"/ws", "/sessions/golden-eagle-427", "/languages", "/healthz", "/metrics"} {
		if w := get(t, mux, http.MethodGet, target); !strings.HasPrefix(w.Body.String(), "route GET ") {
			t.Errorf("GET %s went to the web apps: %d %.60q", target, w.Code, w.Body.String())
		}
	}
	if w := get(t, mux, http.MethodPost, "/sessions"); w.Body.String() != "route POST /sessions" {
		t.Errorf("POST /sessions: %q", w.Body.String())
	}
	// Unknown paths and assets are 404, other methods 405.
	for _, target := range []string{"/nope", "/static/nope.js", "/static/", "/static/js/", "/listen/a/b", "/static/listen.html"} {
		if w := get(t, mux, http.MethodGet, target); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
	}
	if w := get(t, mux, http.MethodPost, "/speak"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /speak: %d", w.Code)
	}
	if w := get(t, mux, http.MethodHead, "/"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(t, mux, http.MethodGet, "/listen"); w.Code != http.StatusFound || w.Header().Get("Location") != "/" {
		t.Errorf("GET /listen: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestRevalidation(t *testing.T) {
	mux := newMux()
	w := get(t, mux, http.MethodGet, "/static/js/speak.js")
	etag := w.Header().Get("ETag")
	if w2 := get(t, mux, http.MethodGet, "/static/js/speak.js", "If-None-Match", etag); w2.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, w2.Code)
	}
	if w3 := get(t, mux, http.MethodGet, "/static/js/listen.js", "If-None-Match", etag); w3.Code != http.StatusOK {
		t.Errorf("another file's ETag: %d", w3.Code)
	}
}

func TestCSP(t *testing.T) {
	for _, d := range []string{"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval';", "connect-src 'self'", "worker-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(CSP, d) {
			t.Errorf("CSP lacks %q", d)
		}
	}
	// Compiling WebAssembly (the WASM Opus decoder) is the one exception;
	// no eval, no inline script or style.
	if strings.Contains(strings.ReplaceAll(CSP, "'wasm-unsafe-eval'", ""), "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", CSP)
	}
}

var (
	refRe    = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	importRe = regexp.MustCompile(`(?:\bfrom\s+|\bimport\s*\(\s*)'(\.{1,2}/[^']+|/static/[^']+)'`)
	moduleRe = regexp.MustCompile(`addModule\('(/static/[^']+)'\)`)
	inlineRe = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle="|\son[a-z]+="|javascript:`)
)

// TestAssetsConsistent checks that every asset a page or module names is
// embedded, and that the pages hold nothing the CSP would block.
func TestAssetsConsistent(t *testing.T) {
	exists := func(p string) bool { _, ok := assets[strings.TrimPrefix(p, "/static/")]; return ok }
	refs := 0
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, _ := files.ReadFile(p)
		text := string(body)
		switch path.Ext(p) {
		case ".html":
			for _, m := range refRe.FindAllStringSubmatch(text, -1) {
				if !exists(m[1]) {
					t.Errorf("%s names %s, which is not embedded", p, m[1])
				}
			}
			if m := inlineRe.FindString(text); m != "" {
				t.Errorf("%s has inline script or style the CSP blocks: %q", p, m)
			}
		case ".js":
			for _, m := range append(importRe.FindAllStringSubmatch(text, -1), moduleRe.FindAllStringSubmatch(text, -1)...) {
				ref := m[1]
				if !strings.HasPrefix(ref, "/") {
					ref = "/" + path.Join(path.Dir(p), ref)
				}
				refs++
				if !exists(ref) {
					t.Errorf("%s imports %s, which is not embedded", p, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if refs < 6 {
		t.Errorf("found only %d module references: is the pattern stale?", refs)
	}
}
