package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// redisProc is a redis-server (or redis-sentinel) of the test's own, on a
// free loopback port: the tests that stall, flush or kill Redis never touch
// a Redis anyone else uses.
type redisProc struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
}

// needBinary skips the test when a program it runs is not installed.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: this test runs its own (apt-get install %s)", name, name)
	}
	return p
}

// startRedis starts a private, empty redis-server without persistence.
func startRedis(t *testing.T, extra ...string) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: needBinary(t, "redis-server"), dir: t.TempDir(), port: testserver.FreePort(t)}
	r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no",
		"--dir", r.dir}, extra...)
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if os.Getenv("PENTECOST_TEST_LOGS") != "" {
		r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := r.client()
	eventually(r.t, 10*time.Second, fmt.Sprintf("%s on port %d answering", filepath.Base(r.bin), r.port), func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

func (r *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *redisProc) url() string  { return "redis://" + r.addr() + "/0" }

// client returns a new client of this server, closed at the test's end;
// create it once, outside any poll loop.
func (r *redisProc) client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: r.addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *redisProc) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stall freezes the server (SIGSTOP): connections stay open, nothing is
// answered. resume lets it go on (SIGCONT).
func (r *redisProc) stall()  { r.signal(syscall.SIGSTOP) }
func (r *redisProc) resume() { r.signal(syscall.SIGCONT) }

// kill ends the server at once (SIGKILL), as a crash does.
func (r *redisProc) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// restartEmpty kills the server and starts a new, empty one on the same
// port.
func (r *redisProc) restartEmpty() {
	r.t.Helper()
	r.kill()
	r.start()
}

// privateCluster is a cluster of nodes on r, on real time (the faults are
// real: timeouts, key expiry), with the test's config changes.
func privateCluster(t *testing.T, r *redisProc, mutate func(*server.Config)) *cluster {
	t.Helper()
	return &cluster{
		t: t, url: r.url(), prefix: "pentecost:",
		clock:  clockwork.NewFakeClock(), // unused: realNode runs on real time
		mutate: mutate,
	}
}

// realNode starts a node of c on real time.
func (c *cluster) realNode() *testserver.Node {
	c.t.Helper()
	return testserver.StartRealTime(c.t, c.config())
}

// startSentinel starts a redis-sentinel watching master as "mymaster",
// with quorum 1 and a failover after 1 s without answers.
func startSentinel(t *testing.T, master *redisProc) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: needBinary(t, "redis-sentinel"), dir: t.TempDir(), port: testserver.FreePort(t)}
	conf := filepath.Join(r.dir, "sentinel.conf")
	body := fmt.Sprintf(`bind 127.0.0.1
port %d
dir %s
sentinel monitor mymaster 127.0.0.1 %d 1
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
sentinel parallel-syncs mymaster 1
`, r.port, r.dir, master.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r.args = []string{conf}
	r.start()
	t.Cleanup(r.kill)
	return r
}
