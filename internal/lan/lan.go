// Package lan lists the addresses at which phones on the same local network
// (the venue's Wi-Fi) can reach this machine, best first.
//
// The rule, in order:
//
//   - Only interfaces that are up and running (an unplugged cable or a
//     bridge with nothing attached has no carrier and is skipped), and never
//     loopback or link-local addresses.
//   - Only private addresses: IPv4 in the RFC 1918 ranges (10/8,
//     172.16/12, 192.168/16) and IPv6 unique local addresses (fc00::/7).
//     Public addresses are left out: a server with one is reached by a
//     domain name and --public-url, not by a LAN link. Carrier-grade NAT
//     (100.64/10, used by Tailscale) is not private in the RFC 1918 sense and
//     a phone on the Wi-Fi cannot reach it, so it is left out too.
//   - IPv4 before IPv6: a phone on venue Wi-Fi always has IPv4, often no ULA
//     route, and nobody types http://[fd12::3]:8080.
//   - Interfaces that look virtual (Docker's docker0, br-*, veth*; libvirt's
//     virbr*; VMware, VirtualBox, Podman, CNI, LXC/LXD, VPNs and overlays:
//     tun*, tap*, wg*, tailscale*, zt*, utun*, ...) and point-to-point links
//     come after the others: a phone never reaches a container bridge. They
//     are ranked last rather than dropped because a name is only a hint (a
//     server's LAN address often lives on a bridge named br0, which is not
//     in the list).
//   - Then 192.168/16 before 10/8 before 172.16/12 (the range Docker takes
//     its networks from when a bridge is not recognised by name), then by
//     interface index and address, so the order is stable.
package lan

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Interface is what the listing needs of a network interface; tests build
// them by hand.
type Interface struct {
	Name  string
	Index int
	Flags net.Flags
	Addrs []netip.Addr
}

// Source lists the machine's interfaces; System is the real one.
type Source func() ([]Interface, error)

// System reads the machine's interfaces.
func System() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue // an interface that vanished meanwhile
		}
		i := Interface{Name: ifc.Name, Index: ifc.Index, Flags: ifc.Flags}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				i.Addrs = append(i.Addrs, addr.Unmap())
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// Address is one reachable address and the interface that holds it.
type Address struct {
	Addr      netip.Addr
	Interface string
	// Virtual is true for addresses of interfaces ranked last (above).
	Virtual bool
}

// Addresses returns the LAN addresses of ifs, best first (see the package
// comment for the rule).
func Addresses(ifs []Interface) []Address {
	type ranked struct {
		Address
		index int
	}
	var out []ranked
	seen := map[netip.Addr]bool{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagRunning == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		virtual := ifc.Flags&net.FlagPointToPoint != 0 || looksVirtual(ifc.Name)
		for _, a := range ifc.Addrs {
			a = a.Unmap().WithZone("")
			if !Private(a) || seen[a] {
				continue
			}
			seen[a] = true
			out = append(out, ranked{Address{Addr: a, Interface: ifc.Name, Virtual: virtual}, ifc.Index})
		}
	}
	slices.SortStableFunc(out, func(x, y ranked) int {
		return cmp.Or(
			cmpBool(x.Virtual, y.Virtual),
			cmpBool(x.Addr.Is6(), y.Addr.Is6()),
			cmp.Compare(rangeRank(x.Addr), rangeRank(y.Addr)),
			cmp.Compare(x.index, y.index),
			x.Addr.Compare(y.Addr),
		)
	})
	res := make([]Address, len(out))
	for i, r := range out {
		res[i] = r.Address
	}
	return res
}

// cmpBool orders false before true.
func cmpBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case !x:
		return -1
	}
	return 1
}

var (
	rfc1918 = []netip.Prefix{
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}
	ula = netip.MustParsePrefix("fc00::/7")
)

// Private reports whether a is an RFC 1918 IPv4 address or an IPv6 unique
// local address: the ranges a LAN link may use.
func Private(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		return rangeRank(a) < len(rfc1918)
	}
	return ula.Contains(a.WithZone(""))
}

func rangeRank(a netip.Addr) int {
	for i, p := range rfc1918 {
		if p.Contains(a) {
			return i
		}
	}
	return len(rfc1918)
}

// virtualPrefixes name the interfaces of container runtimes, hypervisors,
// VPNs and overlay networks on Linux, macOS and BSD.
var virtualPrefixes = []string{
	"docker", "br-", "veth", "virbr", "vnet", "vmnet", "vboxnet", "podman", "cni", "flannel",
	"cali", "weave", "kube", "lxcbr", "lxdbr", "incusbr", "tun", "tap", "wg", "tailscale", "zt",
	"utun", "ipsec", "ppp", "nordlynx", "bridge", "awdl", "llw", "anpi", "ap1",
}

func looksVirtual(name string) bool {
	n := strings.ToLower(name)
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
