package ws

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		c      *ClientIP
		remote string
		xff    []string
		want   string
	}{
		{"socket peer", &ClientIP{}, "203.0.113.5:4000", nil, "203.0.113.5"},
		{"forged header from an untrusted peer is ignored", &ClientIP{}, "203.0.113.5:4000", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted proxy", trusted, "10.1.2.3:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"rightmost untrusted hop wins", trusted, "10.1.2.3:4000", []string{"1.2.3.4, 198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"several headers", trusted, "192.0.2.1:4000", []string{"1.2.3.4", "198.51.100.8"}, "198.51.100.8"},
		{"all trusted: the last one", trusted, "10.1.2.3:4000", []string{"10.2.2.2"}, "10.2.2.2"},
		{"garbage hop falls back to the peer", trusted, "10.1.2.3:4000", []string{"not-an-ip"}, "10.1.2.3"},
		{"IPv4-mapped IPv6", &ClientIP{}, "[::ffff:203.0.113.9]:1", nil, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tt.c.Of(r); got.String() != tt.want {
				t.Fatalf("Of = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("a bad CIDR must be refused")
	}
}

func TestRedact(t *testing.T) {
	if got := Redact(netip.MustParseAddr("203.0.113.77")); got != "203.0.113.0/24" {
		t.Fatalf("IPv4: %s", got)
	}
	if got := Redact(netip.MustParseAddr("2001:db8:1:2:3::9")); got != "2001:db8:1::/48" {
		t.Fatalf("IPv6: %s", got)
	}
}

func TestOriginPolicy(t *testing.T) {
	req := func(host, origin string) *http.Request {
		r := &http.Request{Host: host, Header: http.Header{}}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	same := ParseOrigins("")
	if !same.Check(req("live.example.org", ""), "https") {
		t.Fatal("non-browser clients send no Origin and are allowed")
	}
	if !same.Check(req("live.example.org", "https://live.example.org"), "https") || same.Check(req("live.example.org", "https://evil.example"), "https") {
		t.Fatal("same origin only by default")
	}
	// The scheme is part of the origin, both ways.
	if same.Check(req("192.168.1.20:8080", "https://192.168.1.20:8080"), "http") ||
		same.Check(req("live.example.org", "http://live.example.org"), "https") {
		t.Fatal("a page of another scheme on the same host passed as the same origin")
	}
	list := ParseOrigins("https://church.example/, https://app.example")
	if !list.Check(req("api.example", "https://CHURCH.example"), "http") || list.Check(req("api.example", "https://other.example"), "http") {
		t.Fatal("allow-list")
	}
	if !ParseOrigins("*").Check(req("a", "https://anything.example"), "http") {
		t.Fatal("* allows any origin")
	}
}

// The scheme is https over TLS, or when a trusted proxy says so; a header
// from anyone else is not believed.
func TestScheme(t *testing.T) {
	cip, err := ParseTrustedProxies("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer, proto string
		tls         bool
		want        string
	}{
		{"192.0.2.7:4000", "", false, "http"},
		{"192.0.2.7:4000", "", true, "https"},
		{"192.0.2.7:4000", "https", false, "http"}, // not a trusted proxy
		{"10.0.0.1:4000", "https", false, "https"},
		{"10.0.0.1:4000", "HTTPS, http", false, "https"},
		{"10.0.0.1:4000", "http", false, "http"},
		{"10.0.0.1:4000", "", false, "http"},
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := cip.Scheme(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-Proto %q, TLS %v: %s, want %s", c.peer, c.proto, c.tls, got, c.want)
		}
	}
}
