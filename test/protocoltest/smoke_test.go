package protocoltest

import (
	"bytes"
	"testing"
)

func TestSpeakerToListenerAudio(t *testing.T) {
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	li, joined := listener(t, n, id, "es")
	if joined.Int("listenerCount") != 1 || joined.String("role") != "listener" {
		t.Fatalf("sessionJoined = %v", joined.JSON)
	}
	for i := 0; i < 3; i++ {
		chunk := bytes.Repeat([]byte{byte(i + 1)}, 640)
		if err := sp.SendBinary(ctx(t), chunk); err != nil {
			t.Fatal(err)
		}
		f := nextAudio(t, li)
		if f.Header.Sequence != uint32(i) || f.Header.Kind != 0 || !bytes.Equal(f.Chunk, chunk) {
			t.Fatalf("frame %d: seq %d kind %d len %d", i, f.Header.Sequence, f.Header.Kind, len(f.Chunk))
		}
	}
}
