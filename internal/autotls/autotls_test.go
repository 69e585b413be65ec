package autotls

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/acme/autocert"
)

func TestDomains(t *testing.T) {
	got, err := Domains([]string{"Live.Example.org.", "a.example.org, b.example.org", "live.example.org", " ", "bücher.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"live.example.org", "a.example.org", "b.example.org", "xn--bcher-kva.example"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for in, wantMsg := range map[string]string{
		"192.168.1.20":             "an IP address",
		"[2001:db8::1]":            "an IP address",
		"https://live.example.org": "without scheme",
		"live.example.org:443":     "without scheme, port",
		"*.example.org":            "wildcard",
		"localhost":                "fully qualified",
		"bad_label!.example.org":   "not a valid domain name",
	} {
		_, err := Domains([]string{in})
		if err == nil || !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), "--acme-domain") {
			t.Errorf("Domains(%q) error %v, want one naming the flag and saying %q", in, err, wantMsg)
		}
	}
}

func TestNewRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "root.pem")
	_ = os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cache := autocert.DirCache(dir)
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"no domain":       {Config{Cache: cache, Lock: NewLocalLock()}, "--acme-domain"},
		"bad email":       {Config{Domains: []string{"a.example.org"}, Email: "nobody", Cache: cache, Lock: NewLocalLock()}, "--acme-email"},
		"bad CA":          {Config{Domains: []string{"a.example.org"}, CA: "acme.example.org/dir", Cache: cache, Lock: NewLocalLock()}, "--acme-ca"},
		"missing CA root": {Config{Domains: []string{"a.example.org"}, CARoot: filepath.Join(dir, "none.pem"), Cache: cache, Lock: NewLocalLock()}, "--acme-ca-root"},
		"CA root not PEM": {Config{Domains: []string{"a.example.org"}, CARoot: notPEM, Cache: cache, Lock: NewLocalLock()}, "no PEM certificate"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func newManager(t *testing.T, log *slog.Logger, domains ...string) *Manager {
	t.Helper()
	m, err := New(Config{Domains: domains, Email: "pastor@example.org", CA: "https://127.0.0.1:1/dir", Cache: autocert.DirCache(t.TempDir()), Lock: NewLocalLock(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Everything but an HTTP-01 challenge is sent to HTTPS, on a configured
// host only, to the port HTTPS is on, keeping path and query; POST keeps
// its method (308).
func TestHTTPHandlerRedirects(t *testing.T) {
	m := newManager(t, nil, "live.example.org", "www.example.org")
	h := m.HTTPHandler()
	for _, c := range []struct {
		method, host, target string
		port                 int
		code                 int
		location             string
	}{
		{"GET", "live.example.org", "/listen/golden-eagle-427?lang=es", 443, 301, "https://live.example.org/listen/golden-eagle-427?lang=es"},
		{"HEAD", "www.example.org:80", "/", 443, 301, "https://www.example.org/"},
		{"GET", "WWW.Example.org.", "/x", 443, 301, "https://www.example.org/x"},
		{"GET", "evil.example", "/", 443, 301, "https://live.example.org/"},
		{"GET", "192.168.1.20:80", "/speak", 8443, 301, "https://live.example.org:8443/speak"},
		{"POST", "live.example.org", "/sessions", 443, 308, "https://live.example.org/sessions"},
	} {
		m.SetHTTPSPort(c.port)
		r := httptest.NewRequest(c.method, c.target, nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code || w.Header().Get("Location") != c.location {
			t.Errorf("%s %s%s: %d %q, want %d %q", c.method, c.host, c.target, w.Code, w.Header().Get("Location"), c.code, c.location)
		}
	}
	// An unknown challenge token is a 404, not a redirect; a challenge for
	// a foreign host is refused.
	for host, code := range map[string]int{"live.example.org": 404, "evil.example": 403} {
		r := httptest.NewRequest("GET", "/.well-known/acme-challenge/unknown-token", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != code {
			t.Errorf("challenge for %s: %d, want %d", host, w.Code, code)
		}
	}
}

// A handshake for a name that is not one of the domains fails at once,
// orders nothing (the CA here does not even exist) and is not a warning.
func TestUnknownNameRefusedWithoutAnOrder(t *testing.T) {
	var logs bytes.Buffer
	m := newManager(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), "live.example.org")
	cfg := m.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || !slices.Contains(cfg.NextProtos, "acme-tls/1") {
		t.Fatalf("TLS config: min %x, protos %v", cfg.MinVersion, cfg.NextProtos)
	}
	for _, name := range []string{"other.example.org", "", "192.168.1.20"} {
		_, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err == nil {
			t.Fatalf("%q: a certificate", name)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("refusals logged at info: %s", logs.String())
	}
}

// A failure for a configured domain is a warning, at most once a minute,
// and the account email never appears in it.
func TestFailuresWarnWithoutTheEmail(t *testing.T) {
	var logs bytes.Buffer
	m := newManager(t, slog.New(slog.NewTextHandler(&logs, nil)), "live.example.org")
	if got := m.scrub(`contact email "pastor@example.org" has forbidden domain`); strings.Contains(got, "pastor@") {
		t.Fatalf("scrub left the email: %s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Obtain(ctx) // the CA at 127.0.0.1:1 refuses connections
	m.Obtain(ctx)
	if n := strings.Count(logs.String(), "acme: no certificate"); n != 1 {
		t.Fatalf("%d warnings, want 1: %s", n, logs.String())
	}
	if strings.Contains(logs.String(), "pastor@example.org") {
		t.Fatalf("the email was logged: %s", logs.String())
	}
	if _, err := m.getCertificate(&tls.ClientHelloInfo{ServerName: "live.example.org"}); err == nil || errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("want the order's failure, got %v", err)
	}
}

// Whatever Host and path a client sends to the HTTP listener, the redirect
// goes to one of the domains over HTTPS, never to a name the client chose.
func FuzzRedirect(f *testing.F) {
	for _, s := range [][2]string{
		{"live.example.org", "/listen/x?lang=es"}, {"evil.example", "//evil.example/"}, {"live.example.org:80", "/a/../b"},
		{"WWW.EXAMPLE.ORG.", "/?q=%0d%0aSet-Cookie:x"}, {"[::1]:80", "/"}, {"", "*"},
	} {
		f.Add(s[0], s[1])
	}
	m, err := New(Config{Domains: []string{"live.example.org", "www.example.org"}, CA: "https://127.0.0.1:1/dir", Cache: autocert.DirCache(f.TempDir()), Lock: NewLocalLock()})
	if err != nil {
		f.Fatal(err)
	}
	h := m.HTTPHandler()
	f.Fuzz(func(t *testing.T, host, path string) {
		r, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Skip()
		}
		r.Host = host
		r.URL.Path = path
		if strings.HasPrefix(path, "/.well-known/acme-challenge/") {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		loc := w.Header().Get("Location")
		if !strings.HasPrefix(loc, "https://live.example.org/") && !strings.HasPrefix(loc, "https://www.example.org/") {
			t.Fatalf("Host %q path %q redirected to %q", host, path, loc)
		}
	})
}
