//go:build opus

package sessions_test

import (
	"bytes"
	"testing"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

// A pcm16 speaker on one node, Opus listeners on two: the speaker's node
// encodes once, and both nodes' listeners get the same packets with the
// same numbers; the other node encodes nothing.
func TestEncodeOnceAcrossNodes(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.createFormat("alice", "pcm16", 60)
	onB, _ := b.listenCodec(rec.ID, "es", "opus")
	pcmB, _ := b.listenCodec(rec.ID, "fr", "")
	sp, _ := a.speak(rec.ID, "alice", false)
	onA, info := a.listenCodec(rec.ID, "en", "opus")
	if info.Codec != "opus" || !info.Transcoding {
		t.Fatalf("join: %+v", info)
	}
	for i := 0; i < 9; i++ { // 180 ms: three packets
		sp.Audio(make([]byte, 640))
	}
	for i := 0; i < 3; i++ {
		x, y := onA.audio(), onB.audio()
		if x.audio.Sequence != uint32(i) || y.audio.Sequence != uint32(i) || !bytes.Equal(x.chunk, y.chunk) {
			t.Fatalf("packet %d: node A seq %d, node B seq %d, same bytes %v", i, x.audio.Sequence, y.audio.Sequence, bytes.Equal(x.chunk, y.chunk))
		}
		if p, err := opus.ParsePacket(x.chunk); err != nil || p.Duration().Milliseconds() != 60 {
			t.Fatalf("packet %d: %v %v", i, p.Duration(), err)
		}
	}
	for i := 0; i < 9; i++ {
		if m := pcmB.audio(); m.audio.Sequence != uint32(i) || len(m.chunk) != 640 {
			t.Fatalf("pcm16 chunk %d on node B: seq %d, %d bytes", i, m.audio.Sequence, len(m.chunk))
		}
	}
	if got := a.obs.count("transcoded:encode"); got != 3 {
		t.Fatalf("node A encoded %d packets, want 3", got)
	}
	if got := b.obs.count("transcoded:encode"); got != 0 {
		t.Fatalf("node B encoded %d packets, want 0", got)
	}
}

// An Opus speaker: pcm16 listeners on every node get each packet decoded,
// with the packet's number; a pcm16 processor gets it decoded too, once.
func TestDecodeForPCMListeners(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.createFormat("alice", "opus", 20)
	pcmA, _ := a.listenCodec(rec.ID, "en", "")
	pcmA2, _ := a.listenCodec(rec.ID, "en", "")
	pcmB, _ := b.listenCodec(rec.ID, "en", "")
	opusB, _ := b.listenCodec(rec.ID, "en", "opus")
	sp, _ := a.speak(rec.ID, "alice", false)
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	_ = enc.Push(make([]int16, 3*320), func(p []byte) error { packets = append(packets, bytes.Clone(p)); return nil })
	for _, p := range packets {
		if err := sp.CheckChunk(p); err != nil {
			t.Fatal(err)
		}
		sp.Audio(p)
	}
	for i, p := range packets {
		for name, c := range map[string]*fakeConn{"A": pcmA, "A2": pcmA2, "B": pcmB} {
			if m := c.audio(); m.audio.Sequence != uint32(i) || len(m.chunk) != 640 {
				t.Fatalf("node %s, packet %d: seq %d, %d bytes of pcm16", name, i, m.audio.Sequence, len(m.chunk))
			}
		}
		if m := opusB.audio(); !bytes.Equal(m.chunk, p) {
			t.Fatalf("the Opus listener on B got packet %d changed", i)
		}
	}
	// Each node decodes once per packet, whatever its number of listeners.
	if a.obs.count("transcoded:decode") != 3 || b.obs.count("transcoded:decode") != 3 {
		t.Fatalf("decoded %d on A, %d on B; want 3 each", a.obs.count("transcoded:decode"), b.obs.count("transcoded:decode"))
	}
	_ = protocol.CodecOpus
}

// The speaker's node encodes for Opus listeners that are all on other
// nodes: it knows there are listeners elsewhere, not their codecs.
func TestEncodeForOtherNodesOnly(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.create("alice")
	sp, _ := a.speak(rec.ID, "alice", false)
	onB, _ := b.listenCodec(rec.ID, "es", "opus")
	eventually(t, "node A learns of node B's listener", func() bool {
		sp.Audio(make([]byte, 640*3))
		return a.obs.count("transcoded:encode") > 0
	})
	if m := onB.audio(); m.audio.Sequence != 0 {
		t.Fatalf("first packet on B has sequence %d", m.audio.Sequence)
	}
}

// A speaker attaching to a node that has heard of no listener (a fresh
// node, or its own after a restart) still encodes for the Opus listeners
// that joined elsewhere before it came.
func TestEncodeForListenersWhoJoinedBeforeTheSpeaker(t *testing.T) {
	w := newWorld(t, nil)
	a, b, c := w.node(), w.node(), w.node()
	rec := a.create("alice")
	onB, _ := b.listenCodec(rec.ID, "es", "opus")
	sp, _ := c.speak(rec.ID, "alice", false)
	for i := 0; i < 6; i++ {
		sp.Audio(make([]byte, 640*2)) // 40 ms each: one packet
	}
	if m := onB.audio(); m.audio.Sequence != 0 {
		t.Fatalf("first packet on B has sequence %d", m.audio.Sequence)
	}
	if c.obs.count("transcoded:encode") == 0 {
		t.Fatal("the speaker's node encoded nothing")
	}
}
