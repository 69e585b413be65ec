package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/internal/pebbletest"
	"github.com/pentecost/pentecost/server"
)

const testDomain = "pentecost.test"

// acmeServe starts serve with ACME against Pebble for testDomain, on a
// loopback port, and waits until the certificate is ready (obtained at
// start-up, or loaded from the data dir).
func acmeServe(t *testing.T, p *pebbletest.Pebble, dataDir, httpAddr string, extra ...string) (addr string, out, logs *syncBuffer, stop func() int) {
	t.Helper()
	addr, out, logs, stop = acmeStart(t, p, dataDir, httpAddr, extra...)
	waitCertificate(t, logs)
	return addr, out, logs, stop
}

// acmeStart starts serve with ACME and returns once it listens.
func acmeStart(t *testing.T, p *pebbletest.Pebble, dataDir, httpAddr string, extra ...string) (addr string, out, logs *syncBuffer, stop func() int) {
	t.Helper()
	addr = freeAddr(t)
	args := append([]string{"--acme-domain", testDomain, "--acme-email", "pastor@example.org", "--acme-ca", p.Directory,
		"--acme-ca-root", p.RootFile, "--acme-http-addr", httpAddr}, extra...)
	out, logs, stop = startServeAt(t, addr, dataDir, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}, args...)
	return addr, out, logs, stop
}

func waitCertificate(t *testing.T, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"acme: certificate ready"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate within a minute; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpsClient reaches addr as https://pentecost.test (the name resolved to
// 127.0.0.1 by the dialer), trusting only Pebble's issuing root.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: roots},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// servedChain does a handshake for name and returns the served chain; it
// fails unless the chain verifies against roots (the CA's root only, so the
// intermediates must be served too).
func servedChain(t *testing.T, addr, name string, roots *x509.CertPool) [][]byte {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", st.Version)
	}
	var chain [][]byte
	for _, cert := range st.PeerCertificates {
		chain = append(chain, cert.Raw)
	}
	return chain
}

// The operator's path with a real ACME CA (Pebble): serve obtains a
// certificate for its domain at start-up and serves it with the full chain
// on --addr, with the app behind it; the HTTP listener answers HTTP-01 and
// redirects the rest; after a restart the certificate cached in the data
// dir is served, byte for byte, without a new order. The account email is
// never logged.
func TestServeACMEWithPebble(t *testing.T) {
	p := pebbletest.Start(t)
	dataDir := t.TempDir()
	httpAddr := freeAddr(t)
	addr, out, logs, stop := acmeServe(t, p, dataDir, httpAddr)
	_, port, _ := net.SplitHostPort(addr)
	roots := p.IssuingRoots(t)

	chain := servedChain(t, addr, testDomain, roots)
	if len(chain) < 2 {
		t.Fatalf("served %d certificates, want the leaf and the intermediate", len(chain))
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	if err := leaf.VerifyHostname(testDomain); err != nil {
		t.Fatal(err)
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("pebble saw %d orders, want 1", n)
	}

	// The app is served over HTTPS on --addr.
	c := httpsClient(addr, roots)
	resp, err := c.Get("https://" + testDomain + ":" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /healthz over HTTPS: %d", resp.StatusCode)
	}
	// The start-up links use the domain.
	if !strings.Contains(out.String(), "https://"+testDomain+":"+port+"/speak#token=") {
		t.Errorf("speaker link not on the domain:\n%s", out.String())
	}

	// A name that is not the domain is refused at the handshake, without
	// an order.
	if _, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: "other.test", RootCAs: roots}); err == nil {
		t.Fatal("a handshake for other.test succeeded")
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("pebble saw %d orders after a foreign name, want 1", n)
	}

	// The HTTP listener: an HTTP-01 answer (as a node sharing the cache
	// would have left it) is served, everything else is redirected.
	if err := os.WriteFile(filepath.Join(dataDir, "acme", "tok-123+http-01"), []byte("tok-123.thumbprint"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+httpAddr+path, nil)
		req.Host = host
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp
	}
	r := get("GET", testDomain, "/.well-known/acme-challenge/tok-123")
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "tok-123.thumbprint" {
		t.Errorf("HTTP-01 answer: %d %q", r.StatusCode, b)
	}
	for _, tc := range []struct {
		method, host, path, location string
		code                         int
	}{
		{"GET", testDomain, "/listen/golden-eagle-427?lang=es", "https://" + testDomain + ":" + port + "/listen/golden-eagle-427?lang=es", 301},
		{"GET", "evil.example", "/", "https://" + testDomain + ":" + port + "/", 301},
		{"POST", testDomain, "/sessions", "https://" + testDomain + ":" + port + "/sessions", 308},
	} {
		r := get(tc.method, tc.host, tc.path)
		if r.StatusCode != tc.code || r.Header.Get("Location") != tc.location {
			t.Errorf("%s http://%s%s: %d %q, want %d %q", tc.method, tc.host, tc.path, r.StatusCode, r.Header.Get("Location"), tc.code, tc.location)
		}
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if strings.Contains(logs.String(), "pastor@") {
		t.Errorf("the ACME email was logged:\n%s", logs.String())
	}

	// Restart on the same data dir: the cached certificate, no new order.
	addr2, _, logs2, _ := acmeServe(t, p, dataDir, freeAddr(t))
	again := servedChain(t, addr2, testDomain, roots)
	if !bytes.Equal(again[0], chain[0]) {
		t.Fatal("after a restart the server served another certificate than the one cached in the data dir")
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("pebble saw %d orders after the restart, want still 1", n)
	}
	if strings.Contains(logs2.String(), "pastor@") {
		t.Errorf("the ACME email was logged:\n%s", logs2.String())
	}
}

// A port 80 that cannot be bound (taken, or no privilege) is logged, and
// the server serves HTTPS all the same.
func TestServeACMEHTTPBindFailureIsNotFatal(t *testing.T) {
	p := pebbletest.Start(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr, _, logs, _ := acmeServe(t, p, t.TempDir(), taken.Addr().String())
	if !strings.Contains(logs.String(), `"msg":"acme: cannot listen for HTTP-01 challenges and redirects to HTTPS`) {
		t.Errorf("the bind failure was not logged:\n%s", logs.String())
	}
	servedChain(t, addr, testDomain, p.IssuingRoots(t))
}

func TestServeACMEFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "c.pem")
	_ = os.WriteFile(cert, []byte("x"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--acme-domain", "live.example.org", "--tls-cert", cert, "--tls-key", cert}, "--acme-domain and --tls-cert are two ways to get a certificate"},
		{[]string{"--acme-domain", "192.168.1.20"}, "an IP address"},
		{[]string{"--acme-domain", "https://live.example.org"}, "without scheme"},
		{[]string{"--acme-email", "pastor@example.org"}, "need --acme-domain"},
		{[]string{"--acme-domain", "live.example.org", "--acme-ca-root", filepath.Join(dir, "none.pem")}, "--acme-ca-root"},
	} {
		var errs bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--addr", freeAddr(t), "--data-dir", dir}, c.args...), nil, io.Discard, &errs)
		if code == 0 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want an error saying %q", c.args, code, errs.String(), c.want)
		}
	}
}

// Each ACME flag has its environment twin; --acme-domain's takes a
// comma-separated list, and the flag may be repeated.
func TestServeACMEFlagsAndEnvironment(t *testing.T) {
	parse := func(args []string, env map[string]string) server.Config {
		cfg := server.Defaults()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		serveFlags(fs, &cfg)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse(nil, map[string]string{
		"PENTECOST_ACME_DOMAIN":    "live.example.org, www.example.org",
		"PENTECOST_ACME_EMAIL":     "pastor@example.org",
		"PENTECOST_ACME_CA":        "https://ca.example/dir",
		"PENTECOST_ACME_CA_ROOT":   "/etc/ca.pem",
		"PENTECOST_ACME_HTTP_ADDR": ":8081",
	})
	if !slices.Equal(cfg.ACMEDomains, []string{"live.example.org", "www.example.org"}) || cfg.ACMEEmail != "pastor@example.org" ||
		cfg.ACMECA != "https://ca.example/dir" || cfg.ACMECARoot != "/etc/ca.pem" || cfg.ACMEHTTPAddr != ":8081" {
		t.Fatalf("from the environment: %+v", cfg)
	}
	cfg = parse([]string{"--acme-domain", "a.example.org", "--acme-domain", "b.example.org,c.example.org"}, map[string]string{"PENTECOST_ACME_DOMAIN": "env.example.org"})
	if !slices.Equal(cfg.ACMEDomains, []string{"a.example.org", "b.example.org", "c.example.org"}) {
		t.Fatalf("repeated flag: %v", cfg.ACMEDomains)
	}
	if d := server.Defaults(); d.ACMECA != "https://acme-v02.api.letsencrypt.org/directory" || d.ACMEHTTPAddr != ":80" {
		t.Fatalf("defaults: %q %q", d.ACMECA, d.ACMEHTTPAddr)
	}
}

// Cluster mode: two nodes that start together on one Redis order one
// certificate between them (the order lock), and both serve it (the shared
// cache).
func TestServeACMEClusterSharesOneCertificate(t *testing.T) {
	url := os.Getenv("PENTECOST_TEST_REDIS_URL")
	if url == "" {
		t.Skip("PENTECOST_TEST_REDIS_URL is not set: cluster ACME test skipped (CI sets it)")
	}
	p := pebbletest.Start(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "pentecost-test-acme-" + hex.EncodeToString(rnd[:]) + ":"
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			return
		}
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	cluster := []string{"--redis-url", url, "--redis-prefix", prefix, "--jwt-secret", "0123456789abcdef0123456789abcdef"}
	addr1, _, logs1, _ := acmeStart(t, p, t.TempDir(), "", cluster...)
	addr2, _, logs2, _ := acmeStart(t, p, t.TempDir(), "", cluster...)
	waitCertificate(t, logs1)
	waitCertificate(t, logs2)
	roots := p.IssuingRoots(t)
	c1, c2 := servedChain(t, addr1, testDomain, roots), servedChain(t, addr2, testDomain, roots)
	if !bytes.Equal(c1[0], c2[0]) {
		t.Fatal("the two nodes serve different certificates")
	}
	if n := p.Orders(); n != 1 {
		t.Fatalf("pebble saw %d orders from two nodes, want 1", n)
	}
}
