package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pentecostBinary builds the real command once per test run.
func pentecostBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pentecost-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pentecost")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/pentecost").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a node running as its own process.
type proc struct {
	cmd  *exec.Cmd
	URL  string
	addr string
}

func (c *cluster) process(t *testing.T, extra ...string) *proc {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"serve", "--addr", addr, "--data-dir", t.TempDir(),
		"--redis-url", c.url, "--redis-prefix", c.prefix, "--jwt-secret", testserver.Secret,
		"--node-ttl", "1s", "--sweep-interval", "300ms", "--log-level", "warn"}, extra...)
	cmd := exec.Command(pentecostBinary(t), args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if testing.Verbose() {
				t.Log(s.Text())
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &proc{cmd: cmd, URL: "http://" + addr, addr: addr}
	eventually(t, 15*time.Second, "node "+addr+" up", func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return p
}

func (p *proc) ws(query string) string { return "ws://" + p.addr + "/ws?" + query }

func mint(t *testing.T, sub string) string {
	t.Helper()
	a, err := auth.New(context.Background(), auth.Config{Secret: testserver.Secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint(sub, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dialURL(t *testing.T, u string) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), u, client.DialOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func listenerCount(t *testing.T, p *proc, id string) int {
	t.Helper()
	resp, err := httpGet(p.URL + "/sessions/" + id)
	if err != nil {
		return -1
	}
	var v map[string]any
	if json.Unmarshal(resp, &v) != nil {
		return -1
	}
	n, _ := v["listenerCount"].(float64)
	return int(n)
}

// kill -9 a node mid-session: its listeners leave the counts within the
// node TTL, the speaker that was on it is given its grace by a surviving
// node, re-attaches there, and the sequence continues.
func TestNodeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	c := newCluster(t, nil)
	a, b := c.process(t), c.process(t)
	token := mint(t, "alice")
	sp := dialURL(t, b.ws(q("action", "createSession", "sourceLanguage", "en", "token", token)))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	la := dialURL(t, a.ws(q("sessionId", id, "targetLanguage", "es")))
	expect(t, la, "sessionJoined")
	lb := dialURL(t, b.ws(q("sessionId", id, "targetLanguage", "fr")))
	expect(t, lb, "sessionJoined")
	for i := 0; i < 3; i++ {
		_ = sp.SendBinary(ctx(t), []byte{byte(i)})
		if f := nextAudio(t, la); f.Header.Sequence != uint32(i) {
			t.Fatalf("seq %d", f.Header.Sequence)
		}
	}
	if n := listenerCount(t, a, id); n != 2 {
		t.Fatalf("before the crash A counts %d", n)
	}

	killed := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "B's listener leaves A's count", func() bool { return listenerCount(t, a, id) == 1 })
	t.Logf("count right again %v after kill -9 (node TTL 1s)", time.Since(killed).Round(10*time.Millisecond))
	ev := expect(t, la, "speakerDisconnected")
	if ev.Int("graceSeconds") != 60 {
		t.Fatalf("speakerDisconnected: %v", ev.JSON)
	}
	t.Logf("listeners told of the speaker's loss %v after kill -9", time.Since(killed).Round(10*time.Millisecond))

	// The speaker and B's listener come back through a surviving node.
	back := dialURL(t, a.ws(q("sessionId", id, "token", token)))
	if ev := expect(t, back, "sessionJoined"); ev.String("role") != "speaker" {
		t.Fatalf("re-attach: %v", ev.JSON)
	}
	expect(t, la, "speakerReconnected")
	lb2 := dialURL(t, a.ws(q("sessionId", id, "targetLanguage", "fr")))
	if ev := expect(t, lb2, "sessionJoined"); ev.Int("listenerCount") != 2 {
		t.Fatalf("rejoin: %v", ev.JSON)
	}
	_ = back.SendBinary(ctx(t), []byte{3})
	for _, l := range []*client.Conn{la, lb2} {
		if f := nextAudio(t, l); f.Header.Sequence != 3 {
			t.Fatalf("after the crash: seq %d, want 3", f.Header.Sequence)
		}
	}
}
