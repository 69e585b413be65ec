package protocoltest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// An empty base64 audioData is a 0-byte chunk, like an empty binary frame.
func TestEmptyJSONChunk(t *testing.T) {
	n := start(t, loose)
	sp, _ := speaker(t, n, "alice")
	for _, field := range []string{"audioData", "data"} {
		sendJSON(t, sp, map[string]any{"action": "audioChunk", field: ""})
		ev := expectError(t, sp, "INVALID_PARAMETER")
		if ev.Map("details")["field"] != "audioData" {
			t.Fatalf("details: %v", ev.JSON)
		}
	}
	sendJSON(t, sp, map[string]any{"action": "audioChunk"})
	expectError(t, sp, "MISSING_PARAMETER")
}

// A listener that stops reading is told: once the oldest message waiting
// for it is older than --slow-listener-timeout it gets a real close frame,
// 4008 slowConsumer, behind what its socket already held; the server logs
// "listener too slow" and counts it; and the listener that keeps up misses
// nothing meanwhile.
func TestSlowListenerIsToldWithinTheBound(t *testing.T) {
	const bound = time.Second
	n := start(t, func(c *server.Config) {
		loose(c)
		c.AudioMaxChunksPerSec = 0
		c.ListenerQueueChunks = 8
		c.HeartbeatTimeout = 0
		c.PingInterval = 0
		c.StatusInterval = 0
		c.SlowListenerTimeout = bound
	})
	sp, id := speaker(t, n, "alice")
	good, _ := listener(t, n, id, "es")
	// The stalled client stops reading once it has joined. Its receive
	// buffer is bounded (128 KiB, where loopback would let it grow to
	// megabytes), so the backlog reaches the server's queue within a few
	// chunks however slowly a loaded machine runs this loop.
	stalled := rawDial(t, n, q("sessionId", id, "targetLanguage", "fr"), nil)
	if err := stalled.nc.(*net.TCPConn).SetReadBuffer(128 << 10); err != nil {
		t.Fatal(err)
	}
	for {
		op, p, err := stalled.next()
		if err != nil {
			t.Fatal(err)
		}
		if op == 0x1 && strings.Contains(string(p), `"sessionJoined"`) {
			break
		}
	}

	chunk := make([]byte, 32*1024)
	stopped := time.Now()
	seq := uint32(0)
	for metricValue(t, n, `pentecost_slow_consumers_total{role="listener"}`) < 1 {
		if time.Since(stopped) > time.Minute {
			t.Fatalf("no listener was found too slow %v after it stopped reading (%d chunks of 32 KiB sent)", time.Since(stopped), seq)
		}
		for range 4 {
			sendBin(t, sp, chunk)
			// The listener that keeps up misses nothing.
			if f := nextAudio(t, good); f.Header.Sequence != seq {
				t.Fatalf("good listener: seq %d, want %d", f.Header.Sequence, seq)
			}
			seq++
		}
	}
	told := time.Since(stopped)
	// The server's view: the oldest message waiting for the stalled
	// listener was just past the bound when it was found too slow (pushes
	// come every few milliseconds, so at most a push late).
	line := logLine(t, n, "listener too slow")
	waited, _ := line["waitedMs"].(float64)
	if waited < float64(bound/time.Millisecond) || waited > float64((bound+2*time.Second)/time.Millisecond) ||
		line["role"] != "listener" || line["sessionId"] != id {
		t.Fatalf("slow listener logged as %v, want waitedMs just past %v, the role and the session", line, bound)
	}
	for _, leak := range []string{"127.0.0.1", "token"} {
		if strings.Contains(fmt.Sprint(line), leak) {
			t.Fatalf("the slow-listener log line carries %q: %v", leak, line)
		}
	}
	// The stalled client reads again: what its socket held, then the close.
	for {
		op, p, err := stalled.next()
		if err != nil {
			t.Fatalf("the stalled listener's connection ended without a close frame: %v", err)
		}
		if op == 0x2 && len(p) >= 8 {
			if got := binary.BigEndian.Uint32(p[4:8]); got >= seq {
				t.Fatalf("audio %d reached the stalled listener after it was found too slow (at %d)", got, seq)
			}
		}
		if op == 0x8 {
			if len(p) < 2 || binary.BigEndian.Uint16(p) != 4008 || string(p[2:]) != "slowConsumer" {
				t.Fatalf("stalled listener closed with % x, want 4008 slowConsumer", p)
			}
			_ = stalled.send(0x8, p[:2], frameOpts{}) // the client's reply
			break
		}
	}
	// The listener that kept up still does, and the stalled one is gone.
	sendBin(t, sp, chunk)
	if f := nextAudio(t, good); f.Header.Sequence != seq {
		t.Fatalf("good listener after the cut: seq %d, want %d", f.Header.Sequence, seq)
	}
	waitUntil(t, "the stalled listener leaves the session", func() bool { return n.Srv.Sessions.Stats().Listeners == 1 })
	t.Logf("told after %v of stall (bound %v), %d chunks of 32 KiB", told, bound, seq)
}

// logLine returns the first JSON log line with message msg.
func logLine(t *testing.T, n *testserver.Node, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(n.Logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, n.Logs.String())
	return nil
}

// waitUntil polls cond until it holds, failing the test after 10 s: for
// state the server updates after the client has seen the event.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads one metric from /metrics (name with its labels, as
// printed), or -1.
func metricValue(t *testing.T, n *testserver.Node, name string) float64 {
	t.Helper()
	r := httpDo(t, n, "GET", "/metrics", "", nil)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// With --write-coalesce, audio waits to share writes but control messages
// never wait: a heartbeat is answered even when the window is far longer
// than the test's read guard.
func TestWriteCoalesceNeverDelaysControl(t *testing.T) {
	n := start(t, func(c *server.Config) {
		loose(c)
		c.WriteCoalesce = time.Minute
	})
	sp, _ := speaker(t, n, "alice")
	sendJSON(t, sp, map[string]any{"action": "heartbeat"})
	expect(t, sp, "heartbeatAck")
}

// Coalesced audio arrives complete and in order.
func TestWriteCoalesceKeepsAudioInOrder(t *testing.T) {
	n := start(t, func(c *server.Config) {
		loose(c)
		c.AudioMaxChunksPerSec = 0
		c.WriteCoalesce = 30 * time.Millisecond
	})
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	for i := 0; i < 20; i++ {
		sendBin(t, sp, []byte{byte(i)})
	}
	for i := 0; i < 20; i++ {
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) || f.Chunk[0] != byte(i) {
			t.Fatalf("frame %d: seq %d", i, f.Header.Sequence)
		}
	}
}
