package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/internal/lan"
)

// fakeLAN makes serve see a laptop on a venue's Wi-Fi (and Docker), or with
// loopback only, until the test ends.
func fakeLAN(t *testing.T, withWiFi bool) {
	t.Helper()
	old := lanInterfaces
	lanInterfaces = func() ([]lan.Interface, error) {
		ifs := []lan.Interface{
			{Name: "lo", Index: 1, Flags: net.FlagUp | net.FlagRunning | net.FlagLoopback, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		}
		if withWiFi {
			ifs = append(ifs,
				lan.Interface{Name: "docker0", Index: 2, Flags: net.FlagUp | net.FlagRunning, Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.1")}},
				lan.Interface{Name: "wlan0", Index: 3, Flags: net.FlagUp | net.FlagRunning, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.20")}})
		}
		return ifs, nil
	}
	t.Cleanup(func() { lanInterfaces = old })
}

// startServeEverywhere runs serve on every interface (--addr :PORT), as
// phones need, and returns its loopback address, the port, its output and
// its logs.
func startServeEverywhere(t *testing.T) (addr, port string, out, logs *syncBuffer) {
	t.Helper()
	addr = freeAddr(t)
	_, port, _ = net.SplitHostPort(addr)
	out, logs, _ = startServeAt(t, ":"+port, t.TempDir(), func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	return addr, port, out, logs
}

var tokenRe = regexp.MustCompile(`#token=(eyJ[A-Za-z0-9_.-]+)`)

// A laptop on the venue's Wi-Fi: serve prints the Wi-Fi address for the
// listeners (first, Docker's after it) and the speaker link on 127.0.0.1,
// where the browser allows the microphone; the token never reaches the logs.
func TestServePrintsLANLinks(t *testing.T) {
	fakeLAN(t, true)
	addr, port, out, logs := startServeEverywhere(t)
	text := out.String()
	wifi := "  http://192.168.1.20:" + port + "/\n"
	docker := "  http://172.17.0.1:" + port + "/   (another network of this machine)\n"
	if !strings.Contains(text, wifi) || !strings.Contains(text, docker) || strings.Index(text, wifi) > strings.Index(text, docker) {
		t.Errorf("listener links missing or in the wrong order:\n%s", text)
	}
	if !strings.Contains(text, "  http://127.0.0.1:"+port+"/speak#token=") {
		t.Errorf("no speaker link on 127.0.0.1:\n%s", text)
	}
	if strings.Contains(text, "WARNING") {
		t.Errorf("a warning with a Wi-Fi address:\n%s", text)
	}
	m := tokenRe.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no token in:\n%s", text)
	}
	if strings.Contains(logs.String(), m[1]) || strings.Contains(logs.String(), "192.168.1.20") {
		t.Errorf("the logs hold the token or the LAN address:\n%s", logs.String())
	}

	// GET /links from this machine lists the same, with the real port.
	resp, err := http.Get("http://" + addr + "/links")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		PublicURL string   `json:"publicUrl"`
		LANURLs   []string `json:"lanUrls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := []string{"http://192.168.1.20:" + port, "http://172.17.0.1:" + port}
	if body.PublicURL != "" || !slices.Equal(body.LANURLs, want) {
		t.Errorf("GET /links = %+v, want lanUrls %v", body, want)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("GET /links Cache-Control %q", cc)
	}
}

// Only loopback: a visible warning on the terminal and in the log.
func TestServeWarnsWithoutALANAddress(t *testing.T) {
	fakeLAN(t, false)
	_, _, out, logs := startServeEverywhere(t)
	if !strings.Contains(out.String(), "WARNING: phones cannot reach this server: this machine has no LAN address") {
		t.Errorf("no warning:\n%s", out.String())
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"phones cannot reach this server`) {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
}

// Bound to 127.0.0.1 the server is unreachable from phones whatever the
// interfaces: the warning says how to listen on every interface.
func TestServeWarnsOnALoopbackListener(t *testing.T) {
	fakeLAN(t, true)
	_, out, _ := startServe(t, t.TempDir())
	if !strings.Contains(out.String(), "WARNING: phones cannot reach this server: it listens on 127.0.0.1 only. Listen on every interface: --addr :") {
		t.Errorf("no warning:\n%s", out.String())
	}
}

func TestBannerWithAPublicURL(t *testing.T) {
	var s strings.Builder
	banner{public: "https://live.example.org", scheme: "https", token: "eyJtok"}.write(&s)
	for _, want := range []string{
		"Pentecost is running at https://live.example.org\n",
		"open https://live.example.org/ on their phones",
		"  https://live.example.org/speak#token=eyJtok\n",
	} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("missing %q in:\n%s", want, s.String())
		}
	}
	if strings.Contains(s.String(), "127.0.0.1") {
		t.Errorf("a loopback link with a public URL:\n%s", s.String())
	}
}

// Over HTTPS on a LAN (--tls-cert), another device may speak: its link is
// printed too.
func TestBannerHTTPSOnALAN(t *testing.T) {
	var s strings.Builder
	banner{scheme: "https", listen: &net.TCPAddr{IP: net.IPv6unspecified, Port: 8443}, lan: []string{"https://192.168.1.20:8443"}, token: "eyJtok"}.write(&s)
	for _, want := range []string{
		"  https://127.0.0.1:8443/speak#token=eyJtok\n",
		"  https://192.168.1.20:8443/speak#token=eyJtok\n",
		"  https://192.168.1.20:8443/\n",
	} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("missing %q in:\n%s", want, s.String())
		}
	}
}
