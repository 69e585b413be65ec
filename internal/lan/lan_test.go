package lan

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

const upRunning = net.FlagUp | net.FlagRunning

func iface(name string, index int, flags net.Flags, addrs ...string) Interface {
	i := Interface{Name: name, Index: index, Flags: flags}
	for _, a := range addrs {
		i.Addrs = append(i.Addrs, netip.MustParseAddr(a))
	}
	return i
}

func addrs(as []Address) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.Addr.String())
	}
	return out
}

// A laptop with Docker, libvirt, Tailscale, a VPN and a Wi-Fi: the Wi-Fi
// address comes first, the bridges after, and nothing unreachable at all.
func TestAddressesRanksTheWiFiFirst(t *testing.T) {
	ifs := []Interface{
		iface("lo", 1, upRunning|net.FlagLoopback, "127.0.0.1", "::1"),
		iface("docker0", 2, upRunning, "172.17.0.1"),
		iface("br-3f2a9c", 3, upRunning, "172.18.0.1"),
		iface("veth12ab", 4, upRunning, "fe80::1c2d:3eff:fe4f:5a6b"),
		iface("virbr0", 5, upRunning, "192.168.122.1"),
		iface("tailscale0", 6, upRunning|net.FlagPointToPoint, "100.101.102.103", "fd7a:115c:a1e0::1"),
		iface("wlp2s0", 7, upRunning, "fe80::aaaa:bbbb:cccc:dddd", "fd00:1:2::20", "192.168.1.20", "2a01:db8::20"),
		iface("enp0s31f6", 8, net.FlagUp, "10.0.0.5"), // cable unplugged: no carrier
		iface("eth1", 9, 0, "192.168.50.2"),           // down
		iface("ens5", 10, upRunning, "203.0.113.7"),   // public: not a LAN link
		iface("tun0", 11, upRunning|net.FlagPointToPoint, "10.8.0.2"),
	}
	got := addrs(Addresses(ifs))
	want := []string{
		"192.168.1.20",  // the Wi-Fi
		"fd00:1:2::20",  // its ULA, after every IPv4 of real interfaces
		"192.168.122.1", // virtual, 192.168 first
		"10.8.0.2",      // the VPN
		"172.17.0.1",    // docker0
		"172.18.0.1",    // a Docker network
		"fd7a:115c:a1e0::1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Addresses:\n got %v\nwant %v", got, want)
	}
}

// A bridge that is not Docker's (br0, holding the server's LAN address) is
// not ranked as virtual, and 192.168 wins over 10/8 and 172.16/12 among
// real interfaces.
func TestAddressesRangeOrderAndRealBridges(t *testing.T) {
	ifs := []Interface{
		iface("eth0", 2, upRunning, "172.20.0.9"),
		iface("eth1", 3, upRunning, "10.1.2.3"),
		iface("br0", 4, upRunning, "192.168.0.10"),
	}
	got := addrs(Addresses(ifs))
	want := []string{"192.168.0.10", "10.1.2.3", "172.20.0.9"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAddressesOnlyLoopbackIsEmpty(t *testing.T) {
	got := Addresses([]Interface{iface("lo", 1, upRunning|net.FlagLoopback, "127.0.0.1", "::1")})
	if len(got) != 0 {
		t.Fatalf("got %v, want none", got)
	}
}

func TestPrivate(t *testing.T) {
	for a, want := range map[string]bool{
		"10.0.0.1": true, "10.255.255.255": true, "172.16.0.1": true, "172.31.255.254": true,
		"172.32.0.1": false, "172.15.255.255": false, "192.168.0.1": true, "192.169.0.1": false,
		"100.64.0.1": false, "127.0.0.1": false, "169.254.1.1": false, "8.8.8.8": false,
		"fd00::1": true, "fc00::1": true, "fe80::1": false, "::1": false, "2001:db8::1": false,
		"::ffff:192.168.1.2": true,
	} {
		if got := Private(netip.MustParseAddr(a)); got != want {
			t.Errorf("Private(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestURLs(t *testing.T) {
	list := Addresses([]Interface{
		iface("wlan0", 2, upRunning, "192.168.1.20", "fd00::20"),
		iface("eth0", 3, upRunning, "10.0.0.5"),
	})
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		scheme, listen string
		want           []string
	}{
		{"http", "[::]:8080", []string{"http://192.168.1.20:8080", "http://10.0.0.5:8080", "http://[fd00::20]:8080"}},
		{"http", "0.0.0.0:8080", []string{"http://192.168.1.20:8080", "http://10.0.0.5:8080"}},
		{"http", "10.0.0.5:8080", []string{"http://10.0.0.5:8080"}},
		{"http", "127.0.0.1:8080", []string{}},
		{"https", "[::]:443", []string{"https://192.168.1.20", "https://10.0.0.5", "https://[fd00::20]"}},
		{"http", "0.0.0.0:80", []string{"http://192.168.1.20", "http://10.0.0.5"}},
		{"https", "0.0.0.0:80", []string{"https://192.168.1.20:80", "https://10.0.0.5:80"}},
	} {
		got := URLs(tc.scheme, tcp(tc.listen), list)
		if !slices.Equal(got, tc.want) {
			t.Errorf("URLs(%s, %s) = %v, want %v", tc.scheme, tc.listen, got, tc.want)
		}
	}
}

// The real machine's interfaces list without error, and whatever they are,
// no loopback, link-local or public address comes out.
func TestSystem(t *testing.T) {
	ifs, err := System()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Addresses(ifs) {
		if !Private(a.Addr) || a.Addr.IsLoopback() || a.Addr.IsLinkLocalUnicast() {
			t.Errorf("System listed %s on %s", a.Addr, a.Interface)
		}
	}
}
