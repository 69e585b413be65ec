//go:build !opus

package processor

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/internal/testserver"
)

// A well-framed Opus packet (RFC 6716): SILK wideband, 20 ms, one frame.
var opusPacket = []byte{9 << 3, 0x0b, 0xe4, 0xc1}

// Without Opus the tone mode cannot make a tone for an Opus session: it says
// why, naming the build, and passes the source through.
func TestToneOnOpusWithoutOpus(t *testing.T) {
	out := newFakeOutput()
	w, err := (&Tone{}).Start(context.Background(), Stream{Language: "es", Format: "opus"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Process(Chunk{Data: opusPacket}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.audioBytes(), opusPacket) || len(out.logs) != 1 ||
		!strings.Contains(out.logs[0], "passing the source through") || !strings.Contains(out.logs[0], "-tags opus,nolibopusfile") {
		t.Fatalf("opus: audio %x, logs %q", out.audioBytes(), out.logs)
	}
	if _, err := PCMOnly(&Tone{}).Start(context.Background(), Stream{Language: "es", Format: "opus"}, out); err == nil {
		t.Fatal("PCMOnly started an Opus stream without a decoder")
	}
}

// End to end: the Opus session's source reaches its Spanish listener as it
// was sent.
func TestToneOpusSessionPassesThrough(t *testing.T) {
	n := testserver.Start(t, nil)
	e := startEngine(t, n, &Tone{}, nil)
	sp, sid := speaker(t, n, "opus")
	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, 0, "languages es", langsAre(e.conn, sid, "es"))
	send(t, sp, opusPacket)
	if f := nextTranslated(t, es, nil); !bytes.Equal(f.Chunk, opusPacket) {
		t.Fatalf("opus passthrough: %x", f.Chunk)
	}
}
