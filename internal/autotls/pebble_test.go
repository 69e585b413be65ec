package autotls

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/pentecost/pentecost/internal/pebbletest"
)

// serveTLS serves an empty page with m's TLS configuration on a loopback
// port and returns the address.
func serveTLS(t *testing.T, m *Manager) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// handshake dials addr with the server name and returns the served chain.
// The handshake verifies it against roots, which hold only the CA's root:
// it passes only if the server sent the intermediates too.
func handshake(t *testing.T, addr, name string, roots *tls.Config) [][]byte {
	t.Helper()
	d := &net.Dialer{Timeout: 30 * time.Second}
	cfg := roots.Clone()
	cfg.ServerName = name
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	defer c.Close()
	var chain [][]byte
	for _, cert := range c.ConnectionState().PeerCertificates {
		chain = append(chain, cert.Raw)
	}
	return chain
}

// Against a real ACME CA: the first handshake for the domain gets a
// certificate with its full chain, verified against the CA's issuing root;
// a second manager on the same cache (a restart) serves the same one
// without a new order.
func TestPebbleObtainsAndCaches(t *testing.T) {
	p := pebbletest.Start(t)
	cache := autocert.DirCache(t.TempDir())
	newM := func() *Manager {
		m, err := New(Config{Domains: []string{"pentecost.test"}, CA: p.Directory, CARoot: p.RootFile, Cache: cache, Lock: NewLocalLock()})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	roots := &tls.Config{RootCAs: p.IssuingRoots(t), MinVersion: tls.VersionTLS12}
	chain := handshake(t, serveTLS(t, newM()), "pentecost.test", roots)
	if len(chain) < 2 {
		t.Fatalf("served %d certificates, want the leaf and its intermediate", len(chain))
	}
	orders := p.Orders()
	if orders != 1 {
		t.Fatalf("pebble saw %d orders, want 1", orders)
	}
	again := handshake(t, serveTLS(t, newM()), "pentecost.test", roots)
	if !bytes.Equal(again[0], chain[0]) {
		t.Fatal("after a restart the server served another certificate, not the cached one")
	}
	if n := p.Orders(); n != orders {
		t.Fatalf("pebble saw %d orders after the restart, want still %d", n, orders)
	}
}
