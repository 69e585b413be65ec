// Package testserver starts a real Pentecost node on 127.0.0.1 for tests,
// with a fake clock and an HS256 secret, and mints tokens for it.
package testserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/server"
)

// Secret is the HS256 secret test nodes verify tokens with.
const Secret = "test-secret-for-pentecost-tests-only"

// Node is a running test server.
type Node struct {
	Srv *server.Server
	// Clock is the node's fake clock; nil for a node on real time
	// (StartRealTime).
	Clock   *clockwork.FakeClock
	URL     string // http://127.0.0.1:port
	WSURL   string // ws://127.0.0.1:port/ws
	Config  server.Config
	Logs    *LogBuffer
	t       testing.TB
	stopped bool
}

// Start runs a node with test-friendly defaults, adjusted by mutate.
func Start(t testing.TB, mutate func(*server.Config)) *Node {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = Secret
	cfg.ShutdownGrace = 200 * time.Millisecond
	cfg.SweepInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	return StartConfig(t, cfg, clockwork.NewFakeClockAt(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)))
}

// StartConfig runs a node with exactly cfg and clock.
func StartConfig(t testing.TB, cfg server.Config, clock *clockwork.FakeClock) *Node {
	t.Helper()
	return StartOptions(t, cfg, clock, server.Options{})
}

// StartRealTime runs a node with exactly cfg on real time, for tests of
// what depends on it (rate limits, network faults).
func StartRealTime(t testing.TB, cfg server.Config) *Node {
	t.Helper()
	return StartOptions(t, cfg, nil, server.Options{})
}

// StartOptions runs a node with cfg, clock (nil: real time) and the given
// options (a store to use instead of the embedded one, say); the logger
// writes to the node's LogBuffer (and to stderr with PENTECOST_TEST_LOGS).
func StartOptions(t testing.TB, cfg server.Config, clock *clockwork.FakeClock, o server.Options) *Node {
	t.Helper()
	logs := &LogBuffer{}
	// The logs always go to the buffer, which tests read (what was, or was
	// never, logged); PENTECOST_TEST_LOGS copies them to stderr as well.
	var w io.Writer = logs
	if os.Getenv("PENTECOST_TEST_LOGS") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	o.Logger = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if clock != nil {
		o.Clock = clock
	}
	srv, err := server.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go func() { _ = srv.Serve(l) }()
	addr := l.Addr().String()
	n := &Node{Srv: srv, Clock: clock, URL: "http://" + addr, WSURL: "ws://" + addr + "/ws", Config: cfg, Logs: logs, t: t}
	t.Cleanup(n.Stop)
	return n
}

// Stop shuts the node down (idempotent).
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Srv.Shutdown(ctx)
}

// Token mints a speaker token for sub.
func (n *Node) Token(sub string) string {
	n.t.Helper()
	tok, err := n.Srv.Auth.Mint(sub, time.Hour, false)
	if err != nil {
		n.t.Fatalf("mint: %v", err)
	}
	return tok
}

// WS returns the /ws URL with the given query ("a=b&c=d").
func (n *Node) WS(query string) string {
	if query == "" {
		return n.WSURL
	}
	return n.WSURL + "?" + strings.TrimPrefix(query, "?")
}
