package ws

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP finds the address a request came from: the socket's peer, or,
// when that peer is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For. Anyone can write X-Forwarded-For, so it is believed only
// from the proxies named.
type ClientIP struct {
	Trusted []netip.Prefix
}

// ParseTrustedProxies parses a comma-separated list of CIDRs or addresses.
func ParseTrustedProxies(list string) (*ClientIP, error) {
	c := &ClientIP{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			s = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		c.Trusted = append(c.Trusted, p.Masked())
	}
	return c, nil
}

func (c *ClientIP) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerOf(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return peer.Unmap()
}

// Scheme is the scheme the client reached the server with: https over TLS,
// or when a trusted proxy that terminated TLS says so in X-Forwarded-Proto
// (its first entry: the one the client used); http otherwise.
func (c *ClientIP) Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if peer := peerOf(r); !peer.IsValid() || !c.trusted(peer) {
		return "http"
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if strings.EqualFold(strings.TrimSpace(proto), "https") {
		return "https"
	}
	return "http"
}

// Of returns the client address of r.
func (c *ClientIP) Of(r *http.Request) netip.Addr {
	peer := peerOf(r)
	if !peer.IsValid() {
		return netip.Addr{}
	}
	if len(c.Trusted) == 0 || !c.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			return peer
		}
		a = a.Unmap()
		if !c.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

// Redact returns an address safe to log: the /24 (IPv4) or /48 (IPv6)
// network, never the full address.
func Redact(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p.String()
}
