package lan

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
)

// URLs are the base URLs (scheme://host[:port], no trailing slash) at which
// the LAN reaches a server listening on listen, for the addresses addrs
// (best first, as Addresses returns them). A server bound to 0.0.0.0 is
// reached on IPv4 only; one bound to one address only at that address, and
// only if it is in addrs (a server bound to 127.0.0.1 has no LAN URL). The
// port is left out when it is the scheme's default.
func URLs(scheme string, listen net.Addr, addrs []Address) []string {
	ta, ok := listen.(*net.TCPAddr)
	if !ok {
		return nil
	}
	bound, _ := netip.AddrFromSlice(ta.IP)
	bound = bound.Unmap()
	out := []string{}
	for _, a := range addrs {
		switch {
		case !bound.IsValid() || (bound.IsUnspecified() && bound.Is6()):
		case bound.IsUnspecified(): // 0.0.0.0: IPv4 only
			if !a.Addr.Is4() {
				continue
			}
		case bound != a.Addr:
			continue
		}
		out = append(out, BaseURL(scheme, a.Addr.String(), ta.Port))
	}
	return out
}

// BaseURL joins scheme, host and port, leaving out the scheme's default port.
func BaseURL(scheme, host string, port int) string {
	u := url.URL{Scheme: scheme, Host: host}
	if (scheme == "http" && port != 80) || (scheme == "https" && port != 443) {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	} else if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		u.Host = "[" + host + "]"
	}
	return u.String()
}
