package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/internal/bolt"
)

func TestSessionConfig(t *testing.T) {
	for _, tc := range []struct {
		name         string
		sweep, ttl   time.Duration
		cluster      bool
		wantSweep    time.Duration
		wantReassert time.Duration
	}{
		{"single node keeps its sweep", time.Minute, 10 * time.Second, false, time.Minute, 2500 * time.Millisecond},
		{"single node without sweep", 0, 10 * time.Second, false, 0, 2500 * time.Millisecond},
		{"a cluster sweeps every 5 s at most", time.Minute, 10 * time.Second, true, 5 * time.Second, 2500 * time.Millisecond},
		{"a cluster always sweeps", 0, 10 * time.Second, true, 5 * time.Second, 2500 * time.Millisecond},
		{"a cluster may sweep faster", time.Second, 4 * time.Second, true, time.Second, time.Second},
		{"no node TTL", time.Second, 0, true, time.Second, 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.SweepInterval, cfg.NodeTTL = tc.sweep, tc.ttl
			got := sessionConfig(cfg, tc.cluster)
			if got.SweepInterval != tc.wantSweep || got.ReassertInterval != tc.wantReassert {
				t.Fatalf("sweep %v reassert %v", got.SweepInterval, got.ReassertInterval)
			}
			if got.MaxListeners != cfg.MaxListenersPerSession || got.SpeakerGrace != cfg.SpeakerGrace || got.SessionsPerHour != cfg.RateSessionsPerHour ||
				got.DefaultPacketMs != cfg.PacketMs {
				t.Fatalf("%+v", got)
			}
		})
	}
}

// A packet duration Opus has no frame for is refused before anything opens.
func TestBadPacketMsRefused(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.PacketMs = 30
	if _, err := New(t.Context(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "--packet-ms 30") {
		t.Fatalf("New with --packet-ms 30: %v", err)
	}
}

// Parts close in reverse order of opening; a failure to close one does not
// stop the others, and the first error is returned.
func TestCloseAllInReverse(t *testing.T) {
	s := &Server{log: discard()}
	var order []string
	for _, name := range []string{"first", "second", "third"} {
		s.opened(name, func(context.Context) error {
			order = append(order, name)
			if name == "second" {
				return errors.New("stuck")
			}
			return nil
		})
	}
	err := s.closeAll(context.Background())
	if strings.Join(order, ",") != "third,second,first" || err == nil || !strings.Contains(err.Error(), "second") {
		t.Fatalf("order %v, err %v", order, err)
	}
	if err := s.closeAll(context.Background()); err != nil || len(order) != 3 {
		t.Fatal("closing twice closes nothing twice")
	}
}

func testConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = "a-secret-for-the-server-package-tests"
	cfg.ShutdownGrace = 50 * time.Millisecond
	return cfg
}

// goroutinesSettle waits for the goroutine count to fall back to base.
func goroutinesSettle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A single node that fails at its last steps closes its store again: the
// data dir's file lock is free, and no goroutine is left behind.
func TestFailedStartLeaksNothingOnASingleNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"bad JWKS URL", func(c *Config) { c.JWKSURL = "ftp://idp.example/jwks" }},
		{"reserved role claim", func(c *Config) { c.ProcessorRoleClaim = "sub" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			cfg := testConfig(t)
			tc.mutate(&cfg)
			if _, err := New(context.Background(), cfg, Options{}); err == nil {
				t.Fatal("New succeeded")
			}
			db, err := bolt.Open(filepath.Join(cfg.DataDir, "sessions.db"), bolt.Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("the store is still open: %v", err)
			}
			_ = db.Close()
			goroutinesSettle(t, base)
		})
	}
	t.Run("bad trusted proxies", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.TrustedProxies = "not-a-cidr"
		if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Fatalf("New: %v", err)
		}
	})
}

// A cluster node that fails after it connected to Redis closes its Redis
// client, removes its heartbeat and leaves no goroutine behind.
func TestFailedStartLeaksNothingInACluster(t *testing.T) {
	url := os.Getenv("PENTECOST_TEST_REDIS_URL")
	if url == "" {
		t.Skip("PENTECOST_TEST_REDIS_URL is not set: Redis-backed tests skipped (CI sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	name := "pentecost-leak-test-" + tag
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ours := func() int {
		list, err := rdb.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "name="+name+" ")
	}

	base := runtime.NumGoroutine()
	cfg := testConfig(t)
	cfg.RedisURL = url + sep + "client_name=" + name
	cfg.RedisPrefix = "pentecost-test-" + tag + ":"
	cfg.JWKSURL = "ftp://idp.example/jwks" // fails after Redis is open
	if _, err := New(context.Background(), cfg, Options{}); err == nil {
		t.Fatal("New succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ours() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d Redis connections of the failed node are still open", ours())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if keys, _ := rdb.Keys(context.Background(), cfg.RedisPrefix+"node:*").Result(); len(keys) != 0 {
		t.Fatalf("heartbeat left behind: %v", keys)
	}
	goroutinesSettle(t, base)

	// The same node with a good config opens, and Shutdown closes it all.
	cfg.JWKSURL = ""
	s, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ours() == 0 {
		t.Fatal("the node holds no Redis connection")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for ours() > 0 || runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("after Shutdown: %d connections, %d goroutines (%d before)", ours(), runtime.NumGoroutine(), base)
		}
		time.Sleep(20 * time.Millisecond)
	}
	keys, _ := rdb.Keys(context.Background(), cfg.RedisPrefix+"*").Result()
	if len(keys) > 0 {
		rdb.Del(context.Background(), keys...)
	}
}

// A node runs, serves its API with the security headers, names itself in
// every log line, and shuts down closing everything it opened.
func TestNodeServesAndShutsDown(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := New(context.Background(), testConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(s.Node()); err != nil || len(b) != 8 {
		t.Fatalf("node ID %q", s.Node())
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	goroutinesSettle(t, base)
}

func TestLiveGaugesBeforeTheParts(t *testing.T) {
	var g liveGauges
	if st := g.Stats(); st.Sessions != 0 || g.QueuedMessages() != 0 || g.Connections() != 0 {
		t.Fatal("gauges before the parts exist read zero")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
