// Package autotls obtains and renews the server's TLS certificates from an
// ACME CA (Let's Encrypt by default) with golang.org/x/crypto/acme/autocert:
// the TLS configuration for --addr (which also answers TLS-ALPN-01), the
// handler of the plain-HTTP listener (HTTP-01, and a redirect to HTTPS for
// everything else), and the checks of the --acme-* flags.
//
// Certificates are ordered on the first handshake for a configured domain
// (Obtain asks for them at start-up, so a misconfiguration shows in the log
// at once), kept in an autocert.Cache (a directory in the data dir, or Redis
// in cluster mode) and renewed by autocert 30 days before they expire.
package autotls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
	"golang.org/x/net/idna"
)

// DefaultCA is Let's Encrypt's production directory.
const DefaultCA = autocert.DefaultACMEDirectory

// Config is what the --acme-* flags say.
type Config struct {
	// Domains are the names certificates are obtained for, as the operator
	// typed them; New checks and normalises them (Domains).
	Domains []string
	// Email is the ACME account's contact; it is never logged.
	Email string
	// CA is the ACME directory URL; empty means DefaultCA.
	CA string
	// CARoot is a PEM file of extra roots to trust when talking to the CA.
	CARoot string
	// Cache keeps the account key and the certificates.
	Cache autocert.Cache
	// Lock serialises first orders among everything sharing Cache
	// (NewLocalLock on a single node).
	Lock OrderLock
	// Logger gets ready certificates and failures, never the email.
	Logger *slog.Logger
}

// Manager serves the certificates of one node.
type Manager struct {
	m       *autocert.Manager
	domains []string
	email   string
	log     *slog.Logger
	port    atomic.Int32 // the HTTPS port, for redirects

	lock    OrderLock
	orderMu sync.Mutex // one first order at a time on this node

	mu     sync.Mutex
	warned map[string]time.Time // domain -> last failure logged
	ready  map[string]bool      // domains that had a certificate once
}

// New checks cfg and builds the manager. Nothing is ordered until a
// handshake or Obtain asks.
func New(cfg Config) (*Manager, error) {
	if cfg.Cache == nil || cfg.Lock == nil {
		return nil, errors.New("autotls: no certificate cache or order lock")
	}
	domains, roots, err := check(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ca := cfg.CA
	if ca == "" {
		ca = DefaultCA
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	m := &Manager{
		domains: domains,
		email:   cfg.Email,
		log:     log,
		warned:  map[string]time.Time{},
		ready:   map[string]bool{},
		lock:    cfg.Lock,
		m: &autocert.Manager{
			// Giving --acme-domain is agreeing to the CA's terms
			// (docs/operations.md says so).
			Prompt:     autocert.AcceptTOS,
			Cache:      cfg.Cache,
			HostPolicy: autocert.HostWhitelist(domains...),
			Email:      cfg.Email,
			Client: &acme.Client{
				DirectoryURL: ca,
				UserAgent:    "pentecost",
				HTTPClient:   &http.Client{Transport: tr, Timeout: 60 * time.Second},
			},
		},
	}
	m.port.Store(443)
	return m, nil
}

// Check checks everything of cfg but the cache (the domains, the email, the
// CA's URL, the CA root file), so a server can refuse bad flags before it
// opens anything.
func Check(cfg Config) error {
	_, _, err := check(cfg)
	return err
}

func check(cfg Config) ([]string, *x509.CertPool, error) {
	domains, err := Domains(cfg.Domains)
	if err != nil {
		return nil, nil, err
	}
	if len(domains) == 0 {
		return nil, nil, errors.New("--acme-domain: no domain given")
	}
	if cfg.Email != "" && (!strings.Contains(cfg.Email, "@") || strings.ContainsAny(cfg.Email, " \t\r\n,;<>")) {
		return nil, nil, errors.New("--acme-email: not an email address")
	}
	ca := cfg.CA
	if ca == "" {
		ca = DefaultCA
	}
	if u, err := url.Parse(ca); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nil, fmt.Errorf("--acme-ca %q: want the CA's directory URL, e.g. %s", ca, DefaultCA)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CARoot != "" {
		pem, err := os.ReadFile(cfg.CARoot)
		if err != nil {
			return nil, nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", cfg.CARoot)
		}
	}
	return domains, roots, nil
}

// Domains checks and normalises --acme-domain values: each may hold several
// comma-separated names; names are lower-cased, trailing dots dropped,
// duplicates removed. IP addresses, wildcards, URLs, ports and single-label
// names are refused with a message saying what to do instead.
func Domains(in []string) ([]string, error) {
	var out []string
	for _, v := range in {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
			if d == "" {
				continue
			}
			if err := checkDomain(d); err != nil {
				return nil, fmt.Errorf("--acme-domain %q: %w", d, err)
			}
			a, _ := idna.Lookup.ToASCII(d)
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func checkDomain(d string) error {
	if _, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
		return errors.New("an IP address: certificates are obtained here for DNS names only " +
			"(browsers send no server name for an address, so the server could not choose a certificate). " +
			"Point a DNS name at this machine, or on a LAN serve your own certificate with --tls-cert (docs/operations.md)")
	}
	if strings.Contains(d, "://") || strings.ContainsAny(d, "/:") {
		return errors.New("give the host name alone, without scheme, port or path (e.g. live.example.org)")
	}
	if strings.Contains(d, "*") {
		return errors.New("wildcard certificates need the DNS-01 challenge, which this server does not do; list each name")
	}
	if !strings.Contains(d, ".") {
		return errors.New("not a fully qualified domain name (e.g. live.example.org)")
	}
	if _, err := idna.Lookup.ToASCII(d); err != nil {
		return fmt.Errorf("not a valid domain name: %w", err)
	}
	return nil
}

// DomainNames are the checked domains, the first one first.
func (m *Manager) DomainNames() []string { return slices.Clone(m.domains) }

// SetHTTPSPort tells the redirect which port HTTPS is served on.
func (m *Manager) SetHTTPSPort(port int) { m.port.Store(int32(port)) }

// TLSConfig is the configuration of the HTTPS listener: the certificates of
// the domains, TLS-ALPN-01 answers, TLS 1.2 at least.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.m.TLSConfig()
	c.MinVersion = tls.VersionTLS12
	c.GetCertificate = m.getCertificate
	return c
}

// getCertificate is autocert's, with its failures logged (a name that is
// not one of the domains is refused before anything is ordered and logged
// at debug only: scanners send those all day) and the account email
// scrubbed from the error the TLS layer may log.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	ours := slices.Contains(m.domains, name)
	probe := len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
	if ours && !probe && !m.isReady(name) {
		// The first certificate of a domain: one order at a time, here
		// and (in a cluster) on every node. The CA's TLS-ALPN-01 probe
		// never waits for the lock: the holder's order needs it.
		release, err := m.lockOrder(hello, name)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	c, err := m.m.GetCertificate(hello)
	if err == nil {
		if ours && !probe {
			m.mu.Lock()
			m.ready[name] = true
			m.mu.Unlock()
		}
		return c, nil
	}
	err = errors.New(m.scrub(err.Error()))
	if !ours {
		m.log.Debug("tls: refused a handshake for a name that is not an --acme-domain", "err", err)
		return nil, err
	}
	if probe {
		return nil, err // the order reports its own failure
	}
	m.mu.Lock()
	last, ok := m.warned[name]
	now := time.Now()
	if !ok || now.Sub(last) >= time.Minute {
		m.warned[name] = now
		m.mu.Unlock()
		m.log.Warn("acme: no certificate", "domain", name, "err", err)
	} else {
		m.mu.Unlock()
	}
	return nil, err
}

func (m *Manager) isReady(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready[name]
}

// lockOrder takes this node's order mutex, then the shared lock; it waits
// at most as long as an order may take.
func (m *Manager) lockOrder(hello *tls.ClientHelloInfo, name string) (func(), error) {
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	m.orderMu.Lock()
	release, err := m.lock.Lock(ctx, name)
	if err != nil {
		m.orderMu.Unlock()
		return nil, fmt.Errorf("acme: wait for the order of %s: %w", name, err)
	}
	return func() { release(); m.orderMu.Unlock() }, nil
}

// scrub removes the account email from a CA's message (some CAs quote it).
func (m *Manager) scrub(s string) string {
	if m.email == "" {
		return s
	}
	return strings.ReplaceAll(s, m.email, "[acme-email]")
}

// Obtain asks for each domain's certificate (from the cache, or ordered
// from the CA) and logs the outcome. Call it once the HTTPS listener
// serves: the CA's TLS-ALPN-01 probe comes in there. Each domain takes at
// most 5 minutes (autocert's bound); ctx stops the loop between domains.
func (m *Manager) Obtain(ctx context.Context) {
	for _, d := range m.domains {
		if ctx.Err() != nil {
			return
		}
		hello := &tls.ClientHelloInfo{
			ServerName:        d,
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:   []tls.CurveID{tls.CurveP256},
			CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		}
		c, err := m.getCertificate(hello)
		if err != nil {
			continue // logged
		}
		attrs := []any{"domain", d}
		if c.Leaf != nil {
			attrs = append(attrs, "expires", c.Leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", c.Leaf.Issuer.CommonName)
		}
		m.log.Info("acme: certificate ready", attrs...)
	}
}

// HTTPHandler serves the plain-HTTP listener: HTTP-01 challenges, and a
// redirect to HTTPS for everything else (301 for GET and HEAD, 308 for the
// rest so the method is kept) to the same path on the requested host if it
// is one of the domains, else on the first domain: never on a host name a
// client made up.
func (m *Manager) HTTPHandler() http.Handler {
	return m.m.HTTPHandler(http.HandlerFunc(m.redirect))
}

func (m *Manager) redirect(w http.ResponseWriter, r *http.Request) {
	host := m.domains[0]
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	if h = strings.TrimSuffix(strings.ToLower(h), "."); slices.Contains(m.domains, h) {
		host = h
	}
	target := "https://" + host
	if p := int(m.port.Load()); p != 443 {
		target += ":" + strconv.Itoa(p)
	}
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect
	}
	w.Header().Set("Cache-Control", "no-store")
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") { // "OPTIONS *", or a garbled request line
		uri = "/"
	}
	http.Redirect(w, r, target+uri, code)
}
