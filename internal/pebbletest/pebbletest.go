// Package pebbletest runs Pebble, Let's Encrypt's ACME test CA, for tests:
// on free loopback ports, with a TLS certificate of its own made here, every
// challenge taken as valid (PEBBLE_VA_ALWAYS_VALID), so the server under
// test can obtain certificates for any name.
//
// The Pebble binary is named by PENTECOST_TEST_PEBBLE (.ci/run installs it
// with `go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3`),
// else looked up as `pebble` in PATH; tests skip with a message without it.
package pebbletest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pebble is one running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL (--acme-ca).
	Directory string
	// RootFile is the PEM root that Pebble's own HTTPS listener chains to
	// (--acme-ca-root).
	RootFile string

	mgmt   string
	client *http.Client

	mu   sync.Mutex
	logs strings.Builder
}

// Binary returns the Pebble binary to run, or "" with the reason.
func Binary() (string, string) {
	if p := os.Getenv("PENTECOST_TEST_PEBBLE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("PENTECOST_TEST_PEBBLE=%s: %v", p, err)
		}
		return p, ""
	}
	if p, err := exec.LookPath("pebble"); err == nil {
		return p, ""
	}
	return "", "Pebble not found: set PENTECOST_TEST_PEBBLE to a pebble binary " +
		"(go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3; .ci/run does)"
}

// Start runs Pebble until the test ends, or skips the test without it.
func Start(t testing.TB) *Pebble {
	t.Helper()
	bin, why := Binary()
	if bin == "" {
		t.Skip(why)
	}
	dir := t.TempDir()
	rootFile, certFile, keyFile := writeCA(t, dir)
	acmeAddr, mgmtAddr := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       5002,
		"tlsPort":                        5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "test", "validityPeriod": 7776000},
		},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	p := &Pebble{Directory: "https://" + acmeAddr + "/dir", RootFile: rootFile, mgmt: "https://" + mgmtAddr}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("pebble's log:\n%s", p.Logs())
		}
	})
	pool := x509.NewCertPool()
	pemRoot, _ := os.ReadFile(rootFile)
	pool.AppendCertsFromPEM(pemRoot)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up at %s: %v\n%s", p.Directory, err, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs is what Pebble printed so far.
func (p *Pebble) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Orders counts the new-order requests Pebble has received.
func (p *Pebble) Orders() int {
	n := 0
	for _, l := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(l, "POST /order-plz") {
			n++
		}
	}
	return n
}

// IssuingRoots are the roots of the certificates this Pebble issues (they
// change every launch), from its management API.
func (p *Pebble) IssuingRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble /roots/0: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble /roots/0: %d %q", resp.StatusCode, b)
	}
	return pool
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeCA makes a root and a certificate for 127.0.0.1 and localhost signed
// by it, for Pebble's own HTTPS listener.
func writeCA(t testing.TB, dir string) (rootFile, certFile, keyFile string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pentecost test root for pebble"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "pebble"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("root.pem", "CERTIFICATE", rootDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "PRIVATE KEY", keyDER)
}
