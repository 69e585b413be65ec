package links

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"

	"github.com/pentecost/pentecost/internal/lan"
)

func wifi() ([]lan.Interface, error) {
	return []lan.Interface{
		{Name: "lo", Index: 1, Flags: net.FlagUp | net.FlagRunning | net.FlagLoopback, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Name: "docker0", Index: 2, Flags: net.FlagUp | net.FlagRunning, Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.1")}},
		{Name: "wlan0", Index: 3, Flags: net.FlagUp | net.FlagRunning, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.20")}},
	}, nil
}

func get(t *testing.T, h http.Handler, remote, host string, headers ...string) (Body, http.Header) {
	t.Helper()
	r := httptest.NewRequest("GET", "/links", nil)
	r.RemoteAddr, r.Host = remote, host
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	var b Body
	raw := w.Body.Bytes()
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	// Both keys are always there; lanUrls is a list, never null.
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	if _, ok := m["publicUrl"]; !ok || string(m["lanUrls"]) == "null" || m["lanUrls"] == nil {
		t.Fatalf("body %s: want publicUrl and a lanUrls list", raw)
	}
	return b, w.Result().Header
}

func TestLinksFromThisMachineListTheLAN(t *testing.T) {
	h := &Handler{Scheme: "http", Interfaces: wifi}
	h.Listening(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "")
	for _, c := range []struct{ remote, host string }{
		{"127.0.0.1:50000", "127.0.0.1:8080"},
		{"[::1]:50000", "localhost:8080"},
		{"[::1]:50000", "[::1]:8080"},
		{"127.0.0.1:50000", "pentecost.localhost:8080"},
	} {
		b, hdr := get(t, h, c.remote, c.host)
		want := []string{"http://192.168.1.20:8080", "http://172.17.0.1:8080"}
		if b.PublicURL != "" || !slices.Equal(b.LANURLs, want) {
			t.Errorf("%v: got %+v, want lanUrls %v", c, b, want)
		}
		if cc := hdr.Get("Cache-Control"); cc != "no-store, private" {
			t.Errorf("Cache-Control %q", cc)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

// Nobody but a browser on this machine at a loopback name learns the LAN
// addresses.
func TestLinksHideTheLANFromEveryoneElse(t *testing.T) {
	h := &Handler{Scheme: "http", Interfaces: wifi}
	h.Listening(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "")
	for name, c := range map[string]struct {
		remote, host string
		headers      []string
	}{
		"a phone on the Wi-Fi":              {"192.168.1.33:40000", "192.168.1.20:8080", nil},
		"through a proxy on this machine":   {"127.0.0.1:40000", "127.0.0.1:8080", []string{"X-Forwarded-For", "203.0.113.9"}},
		"through a proxy saying Forwarded":  {"127.0.0.1:40000", "localhost:8080", []string{"Forwarded", "for=203.0.113.9"}},
		"through a proxy saying X-Real-IP":  {"127.0.0.1:40000", "localhost:8080", []string{"X-Real-IP", "203.0.113.9"}},
		"a page rebinding its name to here": {"127.0.0.1:40000", "evil.example:8080", nil},
		"a LAN host name on this machine":   {"127.0.0.1:40000", "192.168.1.20:8080", nil},
		"a garbled peer address":            {"nonsense", "localhost:8080", nil},
	} {
		b, _ := get(t, h, c.remote, c.host, c.headers...)
		if len(b.LANURLs) != 0 {
			t.Errorf("%s: lanUrls %v, want []", name, b.LANURLs)
		}
	}
}

func TestLinksWithAPublicURLNeverListTheLAN(t *testing.T) {
	h := &Handler{Scheme: "https", Interfaces: wifi}
	h.Listening(&net.TCPAddr{IP: net.IPv4zero, Port: 443}, "https://live.example.org")
	b, _ := get(t, h, "127.0.0.1:1", "localhost")
	if b.PublicURL != "https://live.example.org" || len(b.LANURLs) != 0 {
		t.Fatalf("got %+v", b)
	}
}

func TestLinksBeforeListeningOrWithoutInterfaces(t *testing.T) {
	h := &Handler{Scheme: "http", Interfaces: wifi}
	if b, _ := get(t, h, "127.0.0.1:1", "localhost:8080"); len(b.LANURLs) != 0 {
		t.Fatalf("before Listening: %+v", b)
	}
	h = &Handler{Scheme: "http", Interfaces: func() ([]lan.Interface, error) { return nil, errors.New("no netlink") }}
	h.Listening(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "")
	if b, _ := get(t, h, "127.0.0.1:1", "localhost:8080"); len(b.LANURLs) != 0 {
		t.Fatalf("interfaces failing: %+v", b)
	}
	// Bound to loopback only: no LAN link reaches it.
	h = &Handler{Scheme: "http", Interfaces: wifi}
	h.Listening(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "")
	if b, _ := get(t, h, "127.0.0.1:1", "localhost:8080"); len(b.LANURLs) != 0 {
		t.Fatalf("loopback listener: %+v", b)
	}
}
