package sessions_test

import (
	"testing"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// opusPacket is a well-framed Opus packet (RFC 6716): SILK wideband, 20 ms.
var opusPacket = []byte{9 << 3, 0x0b, 0xe4, 0xc1}

func (n *node) createFormat(owner, format string, packetMs int) *pentecost.Session {
	n.w.t.Helper()
	rec, err := n.Create(ctx, owner, sessions.CreateParams{SourceLanguage: "en", AudioFormat: format, PacketMs: packetMs})
	if err != nil {
		n.w.t.Fatalf("create: %v", err)
	}
	return rec
}

func (n *node) listenCodec(id, lang, codec string) (*fakeConn, sessions.JoinInfo) {
	n.w.t.Helper()
	c := newConn(n.w.t)
	_, info, err := n.JoinListener(ctx, c, sessions.JoinParams{SessionID: id, TargetLanguage: lang, Codec: codec})
	if err != nil {
		n.w.t.Fatalf("join %s: %v", lang, err)
	}
	return c, info
}

func TestPacketMs(t *testing.T) {
	n := newWorld(t, nil).node()
	if rec := n.create("alice"); rec.PacketMs != pentecost.DefaultPacketMs || rec.PacketDuration() != pentecost.DefaultPacketMs {
		t.Fatalf("default packetMs: %d", rec.PacketMs)
	}
	// The operator's default (serve --packet-ms) for sessions that choose
	// none; a session's own choice wins.
	op := newWorld(t, func(c *sessions.Config) { c.DefaultPacketMs = 20 }).node()
	if rec := op.create("alice"); rec.PacketMs != 20 {
		t.Fatalf("packetMs with the operator's default 20: %d", rec.PacketMs)
	}
	if rec := op.createFormat("alice", "opus", 40); rec.PacketMs != 40 {
		t.Fatalf("packetMs 40 asked, operator's default 20: %d", rec.PacketMs)
	}
	if rec := n.createFormat("alice", "opus", 20); rec.PacketMs != 20 {
		t.Fatalf("packetMs 20: %d", rec.PacketMs)
	}
	for _, ms := range []int{-1, 30, 100} {
		_, err := n.Create(ctx, "alice", sessions.CreateParams{SourceLanguage: "en", PacketMs: ms})
		wantCode(t, "packetMs", err, pentecost.ErrInvalidParameter)
	}
	if (&pentecost.Session{}).PacketDuration() != pentecost.DefaultPacketMs {
		t.Fatal("a record from before packetMs has no duration")
	}
}

// Without conversion every client gets the session's format, and says so.
func TestNoTranscodeGivesTheSessionFormat(t *testing.T) {
	n := newWorld(t, func(c *sessions.Config) { c.Transcode = false }).node()
	if n.Transcodes() {
		t.Fatal("Transcodes with Transcode false")
	}
	rec := n.createFormat("alice", "opus", 40)
	c, info := n.listenCodec(rec.ID, "es", "pcm16")
	if info.Codec != "opus" || info.Transcoding {
		t.Fatalf("join: %+v", info)
	}
	sp, _ := n.speak(rec.ID, "alice", false)
	if err := sp.CheckChunk([]byte{1<<3 | 1, 1, 2, 3}); err == nil {
		t.Fatal("an Opus session took a malformed packet")
	} else {
		wantCode(t, "check", err, pentecost.ErrInvalidParameter)
	}
	if err := sp.CheckChunk(opusPacket); err != nil {
		t.Fatal(err)
	}
	sp.Audio(opusPacket)
	if m := c.audio(); string(m.chunk) != string(opusPacket) {
		t.Fatalf("the listener got %x", m.chunk)
	}
	if n.obs.count("transcoded:decode")+n.obs.count("transcoded:encode") != 0 {
		t.Fatal("something was converted")
	}
	// A processor asking for pcm16 is told it gets Opus.
	pc := newConn(t)
	n.AttachProcessor(ctx, pc, sessions.ProcessorParams{Codec: "pcm16"})
	if m := pc.expect(protocol.TypeProcessorAttached); m.str("codec") != "pcm16" {
		t.Fatalf("processorAttached %v", m.json)
	}
	if m := pc.expect(protocol.TypeSessionStarted); m.str("audioFormat") != "opus" || m.num("packetMs") != 40 || m.num("sampleRate") != 16000 {
		t.Fatalf("sessionStarted %v", m.json)
	}
	if opus.Available {
		n2 := newWorld(t, nil).node()
		if !n2.Transcodes() {
			t.Fatal("a build with Opus does not transcode by default config")
		}
	}
}
