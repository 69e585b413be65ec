package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/pentecost/pentecost/internal/autotls"
	"github.com/pentecost/pentecost/internal/lan"
)

// tlsSetup is how the node serves --addr: plain HTTP, HTTPS with the
// operator's certificate files, or HTTPS with certificates from an ACME CA
// (and then a second, plain-HTTP listener for HTTP-01 and redirects).
type tlsSetup struct {
	certFile, keyFile string
	acme              *autotls.Manager
	acmeHTTP          *http.Server
	obtainCtx         context.Context
	obtainCancel      context.CancelFunc
}

// checkTLS checks the TLS flags before anything is opened.
func checkTLS(cfg Config) error {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key must be given together")
	}
	acme := len(cfg.ACMEDomains) > 0
	if acme && cfg.TLSCert != "" {
		return errors.New("--acme-domain and --tls-cert are two ways to get a certificate: give one " +
			"(--acme-domain obtains and renews certificates from an ACME CA; --tls-cert serves your own files)")
	}
	if !acme && (cfg.ACMEEmail != "" || cfg.ACMECARoot != "") {
		return errors.New("--acme-email and --acme-ca-root need --acme-domain")
	}
	if acme {
		return autotls.Check(autotls.Config{Domains: cfg.ACMEDomains, Email: cfg.ACMEEmail, CA: cfg.ACMECA, CARoot: cfg.ACMECARoot})
	}
	return nil
}

// newTLS builds the node's TLS setup. With ACME, certificates live in
// cache and orders take lock: in Redis in cluster mode, so every node shares
// them and one node at a time orders, and in <data dir>/acme otherwise.
func newTLS(cfg Config, cache autocert.Cache, lock autotls.OrderLock, log *slog.Logger) (*tlsSetup, error) {
	t := &tlsSetup{certFile: cfg.TLSCert, keyFile: cfg.TLSKey}
	if len(cfg.ACMEDomains) == 0 {
		return t, nil
	}
	m, err := autotls.New(autotls.Config{
		Domains: cfg.ACMEDomains,
		Email:   cfg.ACMEEmail,
		CA:      cfg.ACMECA,
		CARoot:  cfg.ACMECARoot,
		Cache:   cache,
		Lock:    lock,
		Logger:  log,
	})
	if err != nil {
		return nil, err
	}
	t.acme = m
	t.obtainCtx, t.obtainCancel = context.WithCancel(context.Background())
	t.acmeHTTP = &http.Server{
		Handler:           m.HTTPHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 * 1024,
		ErrorLog:          httpErrorLog(log.Handler()),
	}
	return t, nil
}

// tlsConfig is the http.Server's TLS configuration, nil for plain HTTP.
func (t *tlsSetup) tlsConfig() *tls.Config {
	switch {
	case t.acme != nil:
		return t.acme.TLSConfig()
	case t.certFile != "":
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return nil
}

// Scheme is "https" when the node serves TLS on --addr, else "http".
func Scheme(cfg Config) string {
	if len(cfg.ACMEDomains) > 0 || cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}

// PublicBase is the base URL users reach the node at: --public-url, or with
// ACME https://<first domain> (with the port of listen unless it is 443),
// or "" when neither says.
func PublicBase(cfg Config, listen net.Addr) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	if d, err := autotls.Domains(cfg.ACMEDomains); err == nil && len(d) > 0 {
		port := 443
		if ta, ok := listen.(*net.TCPAddr); ok {
			port = ta.Port
		}
		return lan.BaseURL("https", d[0], port)
	}
	return ""
}

// serve serves s.http on l with the node's TLS setup; with ACME it also
// starts obtaining the certificates, now that the CA's TLS-ALPN-01 probe
// can be answered.
func (t *tlsSetup) serve(srv *http.Server, l net.Listener, log *slog.Logger) error {
	switch {
	case t.acme != nil:
		port := 443
		if ta, ok := l.Addr().(*net.TCPAddr); ok {
			port = ta.Port
		}
		t.acme.SetHTTPSPort(port)
		if port != 443 {
			log.Info("acme: HTTPS is not on port 443, so the CA can validate only through HTTP-01 on port 80 (--acme-http-addr), unless port 443 is forwarded here")
		}
		go t.acme.Obtain(t.obtainCtx)
		return srv.ServeTLS(l, "", "")
	case t.certFile != "":
		return srv.ServeTLS(l, t.certFile, t.keyFile)
	}
	return srv.Serve(l)
}

// ACMEHTTPHandler is the handler of the plain-HTTP listener that ACME needs
// (HTTP-01 answers, redirects to HTTPS), nil when ACME is off.
func (s *Server) ACMEHTTPHandler() http.Handler {
	if s.tls.acmeHTTP == nil {
		return nil
	}
	return s.tls.acmeHTTP.Handler
}

// ServeACMEHTTP serves ACMEHTTPHandler on l until Shutdown.
func (s *Server) ServeACMEHTTP(l net.Listener) error {
	if s.tls.acmeHTTP == nil {
		_ = l.Close()
		return errors.New("ACME is off: no HTTP-01 listener to serve")
	}
	if err := s.tls.acmeHTTP.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("acme http listener: %w", err)
	}
	return nil
}

func (t *tlsSetup) shutdown(ctx context.Context) {
	if t.obtainCancel != nil {
		t.obtainCancel()
	}
	if t.acmeHTTP != nil {
		_ = t.acmeHTTP.Shutdown(ctx)
	}
}
