package protocoltest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
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

// A listener that stops reading loses its oldest audio, is disconnected once
// it stays behind, and never costs another listener a chunk.
func TestSlowListenerIsCutOffAlone(t *testing.T) {
	n := start(t, func(c *server.Config) {
		loose(c)
		c.AudioMaxChunksPerSec = 0
		c.ListenerQueueChunks = 8
		c.HeartbeatTimeout = 0
		c.PingInterval = 0
		c.StatusInterval = 0
	})
	sp, id := speaker(t, n, "alice")
	good, _ := listener(t, n, id, "es")
	// The stalled listener reads nothing until the end: a TCP-level stall.
	stalled, _ := listener(t, n, id, "fr")

	chunk := make([]byte, 32*1024)
	const total = 600 // ~19 MiB: far more than the socket buffers hold
	got := 0
	for i := 0; i < total; i++ {
		if err := sp.SendBinary(ctx(t), chunk); err != nil {
			t.Fatal(err)
		}
		// The good listener keeps up and misses nothing.
		f := nextAudio(t, good)
		if f.Header.Sequence != uint32(i) {
			t.Fatalf("good listener: seq %d, want %d", f.Header.Sequence, i)
		}
		got++
		if i%50 == 49 && n.Srv.Sessions.Stats().Listeners == 1 {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.Srv.Sessions.Stats().Listeners != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled listener was never disconnected (%d chunks sent)", got)
		}
		if err := sp.SendBinary(ctx(t), chunk); err != nil {
			t.Fatal(err)
		}
		if f := nextAudio(t, good); f.Header.Sequence != uint32(got) {
			t.Fatalf("good listener: seq %d, want %d", f.Header.Sequence, got)
		}
		got++
	}
	// The stalled client finds its connection closed: with 4008 when the
	// close frame got through its full buffers, else as a dropped socket.
	for {
		_, err := stalled.Next(ctx(t))
		if err == nil {
			continue
		}
		var ce *client.CloseError
		if !errors.As(err, &ce) || (ce.Code != 4008 && ce.Code != 1006) {
			t.Fatalf("stalled listener ended with %v, want close 4008 (or a dropped socket)", err)
		}
		break
	}
	if dropped := metricValue(t, n, "pentecost_audio_frames_dropped_total"); dropped <= 0 {
		t.Fatalf("drops counted: %v", dropped)
	}
}

// metricValue reads one unlabelled metric from /metrics.
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
