package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestHTTPErrorLogRedactsClientAddresses(t *testing.T) {
	var buf bytes.Buffer
	l := httpErrorLog(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.Printf("http: TLS handshake error from 203.0.113.77:51234: acme/autocert: host \"x\" not configured")
	l.Printf("http: TLS handshake error from [2001:db8:1:2:3:4:5:6]:443: EOF")
	l.Printf("http: TLS handshake error from [fe80::1%%eth0]:443: EOF")
	out := buf.String()
	for _, leak := range []string{"203.0.113.77", "51234", "2001:db8:1:2:3", "fe80::1"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q logged:\n%s", leak, out)
		}
	}
	for _, want := range []string{"from 203.0.113.0/24:", "from 2001:db8:1::/48:", "not configured", "level=DEBUG"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}
