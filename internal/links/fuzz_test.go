package links

import (
	"net/http"
	"net/netip"
	"testing"
)

// Whatever a client puts in the Host header and whatever peer address it
// has, the LAN is listed only for a loopback peer at a loopback name.
func FuzzFromThisMachine(f *testing.F) {
	for _, s := range [][2]string{
		{"127.0.0.1:5000", "localhost:8080"}, {"[::1]:1", "[::1]:8080"}, {"192.168.1.3:1", "127.0.0.1"},
		{"127.0.0.1:1", "evil.example"}, {"127.0.0.1:1", "127.0.0.1.evil.example"}, {"127.0.0.1:1", "[::ffff:127.0.0.1]:80"},
		{"127.0.0.1:1", "localhost.:80"}, {"127.0.0.1:1", "a.localhost"}, {"127.0.0.1:1", "%31%32%37.0.0.1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, remote, host string) {
		r := &http.Request{RemoteAddr: remote, Host: host, Header: http.Header{}}
		if !FromThisMachine(r) {
			return
		}
		peer, err := netip.ParseAddrPort(remote)
		if err != nil || !peer.Addr().Unmap().IsLoopback() {
			t.Fatalf("listed for peer %q", remote)
		}
		if !LoopbackHost(host) {
			t.Fatalf("listed for host %q", host)
		}
		r.Header.Set("X-Forwarded-For", "203.0.113.1")
		if FromThisMachine(r) {
			t.Fatal("listed through a proxy")
		}
	})
}
