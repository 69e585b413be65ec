// Package clustertest runs several nodes against one real Redis and checks
// they behave as one server. It needs PENTECOST_TEST_REDIS_URL (CI sets it);
// without it every test skips and says so.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// cluster is a set of nodes sharing one Redis under a prefix of their own
// and one fake clock.
type cluster struct {
	t      *testing.T
	url    string
	prefix string
	clock  *clockwork.FakeClock
	mutate func(*server.Config)
}

func newCluster(t *testing.T, mutate func(*server.Config)) *cluster {
	t.Helper()
	u := os.Getenv("PENTECOST_TEST_REDIS_URL")
	if u == "" {
		t.Skip("PENTECOST_TEST_REDIS_URL is not set: cluster tests need a real Redis (CI sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &cluster{
		t: t, url: u, prefix: "pentecost-test-" + hex.EncodeToString(b[:]) + ":",
		clock:  clockwork.NewFakeClockAt(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)),
		mutate: mutate,
	}
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(u)
		if err != nil {
			return
		}
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		bg := context.Background()
		if keys, _ := rdb.Keys(bg, c.prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(bg, keys...)
		}
	})
	return c
}

func (c *cluster) config() server.Config {
	cfg := server.Defaults()
	cfg.DataDir = c.t.TempDir()
	cfg.JWTSecret = testserver.Secret
	cfg.RedisURL = c.url
	cfg.RedisPrefix = c.prefix
	cfg.ShutdownGrace = 200 * time.Millisecond
	cfg.AudioMaxChunksPerSec = 0
	cfg.HeartbeatTimeout = 0
	cfg.PingInterval = 0
	cfg.StatusInterval = 0
	cfg.SweepInterval = time.Second
	if c.mutate != nil {
		c.mutate(&cfg)
	}
	return cfg
}

func (c *cluster) node() *testserver.Node {
	c.t.Helper()
	return testserver.StartConfig(c.t, c.config(), c.clock)
}

// The shared helpers of internal/testserver, under this package's short names.
var (
	ctx         = testserver.Ctx
	q           = testserver.Query
	expect      = testserver.Expect
	expectClose = testserver.ExpectClose
	nextAudio   = testserver.NextAudio
)

func dial(t *testing.T, n *testserver.Node, query string) *client.Conn {
	t.Helper()
	return n.Dial(t, query)
}

func refused(t *testing.T, c *client.Conn, code string) client.Event {
	t.Helper()
	return testserver.ExpectError(t, c, code)
}

func speaker(t *testing.T, n *testserver.Node, sub string) (*client.Conn, string) {
	t.Helper()
	return n.Speaker(t, sub)
}

func listener(t *testing.T, n *testserver.Node, id, lang string) (*client.Conn, client.Event) {
	t.Helper()
	return n.Listener(t, id, lang)
}

func getSession(t *testing.T, n *testserver.Node, id string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(n.URL + "/sessions/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func httpDo(t *testing.T, method, u, token, body string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx(t), method, u, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond until it holds or the deadline passes. Cluster
// state converges through Redis expiry on real time, so a bounded poll is
// the honest way to wait for it.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
