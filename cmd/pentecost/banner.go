package main

import (
	"fmt"
	"io"
	"net"
	"strings"
)

// banner is the start-up message of `serve` on standard output: where
// listeners and the speaker go. It never goes to the logs (it may hold a
// token), and the token is in the URL's fragment, which browsers do not
// send.
type banner struct {
	public string   // the public base URL, "" when unknown
	scheme string   // how --addr serves: http or https
	listen net.Addr // the bound address
	lan    []string // LAN base URLs, best first (only without public)
	token  string   // a built-in speaker token, "" in the other auth modes
}

func (b banner) write(w io.Writer) {
	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format+"\n", a...) }
	if b.public != "" {
		p("\nPentecost is running at %s\n", b.public)
		p("Listeners: open %s/ on their phones and type the session ID", b.public)
		p("           (the speaker page shows the link as a QR code).")
		if b.token != "" {
			p("\nSpeaker link (valid 12 h; anyone who has it can broadcast, so keep it to yourself):")
			p("  %s/speak#token=%s", b.public, b.token)
		}
		b.more(&s)
		io.WriteString(w, s.String())
		return
	}
	local := b.scheme + "://" + displayAddr(b.listen)
	p("\nPentecost is running.\n")
	if len(b.lan) > 0 {
		p("Listeners: phones on the same network (the venue's Wi-Fi) open")
		p("  %s/", b.lan[0])
		for _, u := range b.lan[1:] {
			p("  %s/   (another network of this machine)", u)
		}
		p("and type the session ID. The speaker page shows the link as a QR code.")
	} else {
		p("WARNING: phones cannot reach this server: %s", b.unreachable())
		p("Listeners on this machine only: %s/", local)
	}
	if b.token != "" {
		p("\nSpeaker link (valid 12 h; anyone who has it can broadcast, so keep it to yourself).")
		p("Open it in a browser on this machine:")
		p("  %s/speak#token=%s", local, b.token)
		if b.scheme == "https" && len(b.lan) > 0 {
			p("or from another computer or phone on the network:")
			p("  %s/speak#token=%s", b.lan[0], b.token)
		} else {
			p("Browsers allow the microphone only on this machine (localhost) or over HTTPS;")
			p("to speak from another device, serve HTTPS (docs/operations.md, \"HTTPS on a LAN\").")
		}
	}
	b.more(&s)
	io.WriteString(w, s.String())
}

func (b banner) more(s *strings.Builder) {
	if b.token != "" {
		s.WriteString("\nMint more speaker tokens with: pentecost token --sub NAME\n")
	}
	s.WriteString("\n")
}

// unreachable says why there is no LAN URL and what to do.
func (b banner) unreachable() string {
	if ta, ok := b.listen.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return fmt.Sprintf("it listens on %s only. Listen on every interface: --addr :%d", ta.IP, ta.Port)
	} else if ok && !ta.IP.IsUnspecified() && ta.IP != nil {
		return fmt.Sprintf("it listens on %s only, which is not a private (LAN) address. Set --public-url to the URL users reach it at", ta.IP)
	}
	return "this machine has no LAN address (only loopback). Connect it to the network (Wi-Fi) and restart, or set --public-url"
}
