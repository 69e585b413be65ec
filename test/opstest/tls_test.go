package opstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// selfSigned writes a certificate for 127.0.0.1 and returns the file paths
// and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pentecost test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := testserver.Start(t, func(c *server.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	host := strings.TrimPrefix(n.URL, "http://")

	// HTTPS with TLS 1.2+.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + host + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https: %d %+v", resp.StatusCode, resp.TLS)
	}

	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + host + "/healthz"); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}

	// WSS end to end.
	tc := &tls.Config{RootCAs: pool}
	sp, err := client.Dial(ctx(t), "wss://"+host+"/ws?"+q("action", "createSession", "sourceLanguage", "en", "token", n.Token("alice")), client.DialOptions{TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.CloseNow()
	id := expect(t, sp, "sessionCreated").String("sessionId")
	li, err := client.Dial(ctx(t), "wss://"+host+"/ws?"+q("sessionId", id, "targetLanguage", "es"), client.DialOptions{TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer li.CloseNow()
	expect(t, li, "sessionJoined")
	for i := 0; i < 3; i++ {
		if err := sp.SendBinary(ctx(t), []byte{byte(i), 9}); err != nil {
			t.Fatal(err)
		}
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) {
			t.Fatalf("seq %d", f.Header.Sequence)
		}
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if resp, err := http.Get(n.URL + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}
