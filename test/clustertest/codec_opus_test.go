//go:build opus

package clustertest

import (
	"bytes"
	"testing"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/server"
)

// A pcm16 speaker on node A, Opus listeners on B and C: A encodes, the
// packets reach both through Redis with the same numbers, and the numbering
// continues when the speaker moves to node B. The nodes make 60 ms packets
// (--packet-ms 60), three of the speaker's 20 ms chunks each.
func TestOpusAcrossNodes(t *testing.T) {
	c := newCluster(t, func(cfg *server.Config) { cfg.PacketMs = 60 })
	a, b, cc := c.node(), c.node(), c.node()
	sp, id := speaker(t, a, "alice")
	lb := dial(t, b, q("sessionId", id, "targetLanguage", "es", "codec", "opus"))
	expect(t, lb, "sessionJoined")
	lc := dial(t, cc, q("sessionId", id, "targetLanguage", "fr", "codec", "opus"))
	expect(t, lc, "sessionJoined")
	pcm := dial(t, cc, q("sessionId", id, "targetLanguage", "de"))
	expect(t, pcm, "sessionJoined")
	packet := 0
	check := func(who string) {
		t.Helper()
		fb, fc := nextAudio(t, lb), nextAudio(t, lc)
		if fb.Header.Sequence != uint32(packet) || fc.Header.Sequence != uint32(packet) || !bytes.Equal(fb.Chunk, fc.Chunk) {
			t.Fatalf("%s: packet %d has sequence %d on B, %d on C (same bytes %v)", who, packet, fb.Header.Sequence, fc.Header.Sequence, bytes.Equal(fb.Chunk, fc.Chunk))
		}
		if p, err := opus.ParsePacket(fb.Chunk); err != nil || p.Duration().Milliseconds() != 60 {
			t.Fatalf("%s: packet %d: %v %v", who, packet, p.Duration(), err)
		}
		packet++
	}
	for i := 0; i < 6; i++ { // 20 ms chunks: three make a 60 ms packet
		if err := sp.SendBinary(ctx(t), make([]byte, 640)); err != nil {
			t.Fatal(err)
		}
		nextAudio(t, pcm)
		if i%3 == 2 {
			check("speaker on A")
		}
	}
	moved := dial(t, b, q("sessionId", id, "token", b.Token("alice")))
	expect(t, moved, "sessionJoined")
	expect(t, sp, "connectionReplaced")
	for i := 0; i < 6; i++ {
		if err := moved.SendBinary(ctx(t), make([]byte, 640)); err != nil {
			t.Fatal(err)
		}
		nextAudio(t, pcm)
		if i%3 == 2 {
			check("speaker moved to B")
		}
	}
}
