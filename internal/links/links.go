// Package links serves GET /links: the base URLs a speaker page should give
// its listeners (the QR code and the copy link).
//
//	{"publicUrl": "https://live.example.org", "lanUrls": []}
//	{"publicUrl": "", "lanUrls": ["http://192.168.1.20:8080", "http://10.0.0.5:8080"]}
//
// publicUrl is the configured public URL, or "". lanUrls lists the
// machine's LAN addresses (package lan) with the scheme and port the server
// listens on, and is filled only when there is no public URL and the request
// comes from this machine: the socket peer is a loopback address, the Host
// header names a loopback host, and no proxy forwarded it. Everyone else
// gets [], so a server on the internet never tells its private addresses,
// neither to a client through a reverse proxy on the same machine (the peer
// is then loopback, but the request carries forwarding headers) nor to a web
// page that rebinds its own name to 127.0.0.1 (the Host is then not
// loopback).
package links

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/pentecost/pentecost/internal/lan"
)

// Handler serves GET /links.
type Handler struct {
	// Scheme is the scheme the server listens with: "http" or "https".
	Scheme string
	// Interfaces lists the machine's interfaces (lan.System in production).
	Interfaces lan.Source
	Logger     *slog.Logger

	listening atomic.Pointer[listening]
}

type listening struct {
	addr      *net.TCPAddr
	publicURL string
}

// Listening records the address the server listens on and the public URL
// users reach it at ("" when unknown); until then publicUrl is "" and
// lanUrls empty.
func (h *Handler) Listening(a net.Addr, publicURL string) {
	ta, _ := a.(*net.TCPAddr)
	h.listening.Store(&listening{addr: ta, publicURL: publicURL})
}

// Body is the JSON of GET /links.
type Body struct {
	PublicURL string   `json:"publicUrl"`
	LANURLs   []string `json:"lanUrls"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := Body{LANURLs: []string{}}
	if l := h.listening.Load(); l != nil {
		b.PublicURL = l.publicURL
		if l.addr != nil && l.publicURL == "" && FromThisMachine(r) {
			ifs, err := h.Interfaces()
			if err != nil && h.Logger != nil {
				h.Logger.Warn("links: cannot list network interfaces", "err", err)
			}
			b.LANURLs = lan.URLs(h.Scheme, l.addr, lan.Addresses(ifs))
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	// The answer depends on who asks: no shared cache may keep it.
	hd.Set("Cache-Control", "no-store, private")
	_ = json.NewEncoder(w).Encode(b)
}

// FromThisMachine reports whether r was sent by a browser on this machine
// to a loopback name: loopback peer, loopback Host, no forwarding headers.
func FromThisMachine(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !peer.Addr().Unmap().IsLoopback() {
		return false
	}
	return LoopbackHost(r.Host)
}

// LoopbackHost reports whether host (with or without a port) names this
// machine's loopback: localhost, *.localhost, 127.0.0.0/8 or ::1.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
