package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

func codecListener(id, lang, codec string, base64 bool) *Listener {
	l := newListener(id, lang, base64)
	l.Codec = codec
	return l
}

// A room sends each listener the codec it takes: the source chunks to those
// of the room's format, converted chunks to the others, and each framed
// once for all of its codec.
func TestRoomCodecs(t *testing.T) {
	r := NewRoom(RoomOptions{SessionID: "golden-eagle-427", Format: protocol.CodecPCM16})
	pcm := codecListener("p", "en", "", false) // empty: the room's format
	op := codecListener("o", "en", protocol.CodecOpus, false)
	op2 := codecListener("o2", "es", protocol.CodecOpus, false)
	opText := codecListener("ot", "en", protocol.CodecOpus, true)
	for _, l := range []*Listener{pcm, op, op2, opText} {
		if _, err := r.Join(l, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if !r.WantsSource("en", protocol.CodecOpus) || !r.WantsSource("en", protocol.CodecPCM16) {
		t.Fatal("the room does not say it wants both codecs")
	}
	seq, n := r.Publish("en", []byte{1, 0, 2, 0}, time.Now())
	if seq != 0 || n != 1 || pcm.Queue.Len() != 1 || op.Queue.Len() != 0 || opText.Queue.Len() != 0 {
		t.Fatalf("the pcm16 chunk reached %d listeners (pcm %d, opus %d, opus text %d)", n, pcm.Queue.Len(), op.Queue.Len(), opText.Queue.Len())
	}
	oseq := r.TakeSeq(ConvertedStream(protocol.CodecOpus, ""))
	if n := r.DeliverConverted("en", protocol.CodecOpus, oseq, time.Now(), []byte{9 << 3, 7}); n != 3 || pcm.Queue.Len() != 1 {
		t.Fatalf("the Opus packet reached %d listeners, want the 3 Opus ones", n)
	}
	a, b := op.Queue.Take(nil)[0], op2.Queue.Take(nil)[0]
	if a != b {
		t.Fatal("two Opus listeners got two frames: the packet must be framed once")
	}
	var txt struct {
		Format string `json:"format"`
		Seq    uint32 `json:"sequenceNumber"`
	}
	if err := json.Unmarshal(opText.Queue.Take(nil)[0].Payload, &txt); err != nil || txt.Format != "opus" || txt.Seq != 0 {
		t.Fatalf("base64 Opus listener got %+v, %v", txt, err)
	}
	if r.TakeSeq(ConvertedStream(protocol.CodecOpus, "")) != 1 {
		t.Fatal("the converted stream's counter did not advance")
	}
	r.RaiseSeq(ConvertedStream(protocol.CodecOpus, ""), 100)
	r.RaiseSeq(ConvertedStream(protocol.CodecOpus, ""), 50) // never back
	if r.TakeSeq(ConvertedStream(protocol.CodecOpus, "")) != 100 || r.NextSeq() != 1 {
		t.Fatal("RaiseSeq moved the wrong counter or moved it back")
	}
	// A listener keeps its codec across a language change.
	if _, _, ok := r.ChangeLanguage("o2", "en"); !ok {
		t.Fatal("change language")
	}
	r.DeliverConverted("en", protocol.CodecOpus, 2, time.Now(), []byte{9 << 3})
	if op2.Queue.Len() != 1 {
		t.Fatal("the moved listener lost its codec")
	}
}

// Served languages take the translated stream, in the processor's codec
// and converted; taps take the source in their codec.
func TestRoomCodecsTranslatedAndTaps(t *testing.T) {
	r := NewRoom(RoomOptions{Format: protocol.CodecOpus, StreamID: 7})
	esPCM := codecListener("a", "es", protocol.CodecPCM16, false)
	esOpus := codecListener("b", "es", "", false)
	for _, l := range []*Listener{esPCM, esOpus} {
		_, _ = r.Join(l, 0, false)
	}
	r.SetServed("es", true)
	if r.WantsSource("en", protocol.CodecPCM16) {
		t.Fatal("a served language's listeners want the source")
	}
	if !r.WantsTranslated("es", protocol.CodecPCM16) || r.WantsTranslated("fr", protocol.CodecPCM16) {
		t.Fatal("WantsTranslated")
	}
	pcmTap, opusTap := NewQueue(QueueOptions{}), NewQueue(QueueOptions{})
	r.SetTaps([]Tap{{Queue: pcmTap, Codec: protocol.CodecPCM16}, {Queue: opusTap}})
	if !r.WantsSource("en", protocol.CodecPCM16) {
		t.Fatal("a pcm16 tap does not want the source in pcm16")
	}
	r.Publish("en", []byte{9 << 3}, time.Now())
	if opusTap.Len() != 1 || pcmTap.Len() != 0 || esPCM.Queue.Len()+esOpus.Queue.Len() != 0 {
		t.Fatal("the Opus source went to the wrong queues")
	}
	r.DeliverConverted("en", protocol.CodecPCM16, 0, time.Now(), []byte{0, 0})
	h, _, _ := protocol.ParseAudioFrame(pcmTap.Take(nil)[0].Payload)
	if pcmTap.Len() != 0 || h.StreamID != 7 {
		t.Fatalf("the pcm16 tap's frame carries stream %d", h.StreamID)
	}
	seq, n := r.PublishTranslated("es", protocol.CodecPCM16, []byte{0, 0}, time.Now())
	if seq != 0 || n != 1 || esPCM.Queue.Len() != 1 || esOpus.Queue.Len() != 0 {
		t.Fatalf("translated pcm16: seq %d, %d listeners", seq, n)
	}
	if n := r.DeliverTranslated("es", protocol.CodecOpus, 0, time.Now(), []byte{9 << 3}); n != 1 || esOpus.Queue.Len() != 1 {
		t.Fatalf("translated Opus reached %d", n)
	}
}
