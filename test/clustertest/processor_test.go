package clustertest

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// In a cluster a processor translates for the listeners of the node it is
// attached to: a node with listeners receives the session's source audio
// from the bus, hands it to its processors, and fans their translation out
// to its own listeners.
func TestProcessorServesItsNodesListeners(t *testing.T) {
	c := newCluster(t, nil)
	a, b := c.node(), c.node()
	tok, err := b.Srv.Auth.Mint("engine", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	p := dial(t, b, q("action", "attachProcessor", "token", tok, "languages", "es"))
	expect(t, p, "processorAttached")

	sp, id := speaker(t, a, "alice")
	es, joined := listener(t, b, id, "es")
	if !joined.Bool("translated") {
		t.Fatalf("es on B has a processor on B: %v", joined.JSON)
	}
	started := expect(t, p, "sessionStarted")
	stream := uint16(started.Int("streamId"))
	if ev := expect(t, p, "languagesChanged"); ev.String("sessionId") != id {
		t.Fatalf("languagesChanged: %v", ev.JSON)
	}
	_ = sp.SendBinary(ctx(t), []byte("source from A"))
	if f := nextAudio(t, p); string(f.Chunk) != "source from A" || f.Header.StreamID != stream {
		t.Fatalf("processor on B got %q stream %d", f.Chunk, f.Header.StreamID)
	}
	frame := make([]byte, protocol.ProcessorHeaderSize+4)
	protocol.PutProcessorHeader(frame, stream, "es")
	copy(frame[protocol.ProcessorHeaderSize:], "hola")
	if err := p.SendBinary(ctx(t), frame); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != protocol.KindTranslated || string(f.Chunk) != "hola" {
		t.Fatalf("es listener on B: kind %d %q", f.Header.Kind, f.Chunk)
	}
}
