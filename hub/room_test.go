package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pentecost/pentecost/protocol"
)

func newListener(id, lang string, b64 bool) *Listener {
	return &Listener{ID: id, Lang: lang, Base64: b64, Queue: NewQueue(QueueOptions{})}
}

func TestRoomCapIsAtomic(t *testing.T) {
	r := NewRoom(RoomOptions{})
	const max, tries = 50, 80
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := r.Join(newListener(fmt.Sprint(i), "es", false), max, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrFull):
				full++
			}
		}(i)
	}
	wg.Wait()
	if ok != max || full != tries-max || r.Count() != max {
		t.Fatalf("admitted %d, refused %d, count %d; want %d/%d/%d", ok, full, r.Count(), max, tries-max, max)
	}
	if _, err := r.Join(newListener("refresh", "es", false), max, true); err != nil {
		t.Fatalf("a refresh may exceed the cap: %v", err)
	}
}

func TestRoomPublishFramesOncePerStream(t *testing.T) {
	r := NewRoom(RoomOptions{SessionID: "golden-eagle-427", Format: "pcm16"})
	ls := []*Listener{
		newListener("a", "en", false), newListener("b", "es", false),
		newListener("c", "es", true), newListener("d", "es", true), newListener("e", "fr", true),
	}
	for _, l := range ls {
		if _, err := r.Join(l, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	ingest := time.UnixMicro(1_700_000_000_000_000)
	for want := uint32(0); want < 3; want++ {
		seq, n := r.Publish("en", []byte("pcm"), ingest)
		if seq != want || n != len(ls) {
			t.Fatalf("publish: seq %d to %d listeners; want %d to %d", seq, n, want, len(ls))
		}
	}
	a, b := ls[0].Queue.Take(nil), ls[1].Queue.Take(nil)
	if a[0] != b[0] {
		t.Fatal("binary listeners of different languages got different frames for the same source chunk")
	}
	h, chunk, err := protocol.ParseAudioFrame(a[2].Payload)
	if err != nil || h.Sequence != 2 || h.Kind != protocol.KindSource || string(chunk) != "pcm" || !h.Ingest.Equal(ingest) {
		t.Fatalf("frame: %+v %q %v", h, chunk, err)
	}
	c, d, e := ls[2].Queue.Take(nil), ls[3].Queue.Take(nil), ls[4].Queue.Take(nil)
	if c[0] != d[0] || c[0] == e[0] {
		t.Fatal("base64 listeners of one language got different messages, or two languages one message")
	}
	var got protocol.AudioData
	if err := json.Unmarshal(e[1].Payload, &got); err != nil {
		t.Fatal(err)
	}
	want := protocol.AudioData{
		Header:    protocol.Header{Type: protocol.TypeAudioData, Timestamp: ingest.UnixMilli()},
		SessionID: "golden-eagle-427", TargetLanguage: "fr", SequenceNumber: 1, AudioData: "cGNt", Format: "pcm16",
	}
	if got != want || e[1].Binary || !e[1].Audio {
		t.Fatalf("base64 message %s, want %+v", e[1].Payload, want)
	}
}

// Every message is framed once, as the unmasked final frame a server sends:
// the bytes every listener's writer hands the socket.
func TestMessageFraming(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		m := NewControl(make([]byte, n))
		h, err := ws.ReadHeader(bytes.NewReader(m.Wire()))
		if err != nil || !h.Fin || h.Masked || h.OpCode != ws.OpText || h.Length != int64(n) ||
			len(m.Wire()) != ws.HeaderSize(h)+n || len(m.Payload) != n {
			t.Fatalf("%d-byte control: header %+v, %d bytes framed, %v", n, h, len(m.Wire()), err)
		}
	}
	m := newAudioFrame(protocol.KindTranslated, 7, 42, time.UnixMicro(5), []byte("pcm"))
	h, err := ws.ReadHeader(bytes.NewReader(m.Wire()))
	if err != nil || h.OpCode != ws.OpBinary || h.Length != protocol.AudioHeaderSize+3 {
		t.Fatalf("audio header %+v %v", h, err)
	}
	ah, chunk, err := protocol.ParseAudioFrame(m.Payload)
	if err != nil || ah.Kind != protocol.KindTranslated || ah.StreamID != 7 || ah.Sequence != 42 || string(chunk) != "pcm" {
		t.Fatalf("audio frame %+v %q %v", ah, chunk, err)
	}
	if c := closeFrame(4008, "slowConsumer"); !bytes.Equal(c, append([]byte{0x88, 14, 0x0f, 0xa8}, "slowConsumer"...)) {
		t.Fatalf("close frame % x", c)
	}
}

func TestRoomServedLanguageSkipsSource(t *testing.T) {
	r := NewRoom(RoomOptions{})
	es := newListener("es1", "es", false)
	en := newListener("en1", "en", false)
	_, _ = r.Join(es, 0, false)
	_, _ = r.Join(en, 0, false)
	r.SetServed("es", true)
	r.Publish("en", []byte("x"), time.Now())
	if es.Queue.Len() != 0 || en.Queue.Len() != 1 {
		t.Fatalf("served language got source audio: es %d en %d", es.Queue.Len(), en.Queue.Len())
	}
	seq, n := r.PublishTranslated("es", protocol.CodecPCM16, []byte("y"), time.Now())
	if seq != 0 || n != 1 {
		t.Fatalf("translated: seq %d n %d", seq, n)
	}
	h, _, _ := protocol.ParseAudioFrame(es.Queue.Take(nil)[0].Payload)
	if h.Kind != protocol.KindTranslated {
		t.Fatal("translated frame has kind 0")
	}
}

// A language whose translation switches between audio and captions only
// (a failover between the two kinds of processor): while not served it
// gets the source frames, kind 0 with the source's numbers; captions reach
// it either way; the translated stream's numbers go on where they stopped.
func TestRoomServedFlipsKeepNumbering(t *testing.T) {
	r := NewRoom(RoomOptions{})
	es := newListener("es1", "es", false)
	_, _ = r.Join(es, 0, false)
	kinds := func() (out []string) {
		for _, m := range es.Queue.Take(nil) {
			if !m.Audio {
				out = append(out, "control")
				continue
			}
			h, chunk, err := protocol.ParseAudioFrame(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d/%d/%s", h.Kind, h.Sequence, chunk))
		}
		return out
	}
	caption := NewControl([]byte(`{"type":"caption"}`))

	r.SetServed("es", true)
	r.Publish("en", []byte("s0"), time.Now())
	r.PublishTranslated("es", protocol.CodecPCM16, []byte("t0"), time.Now())
	r.SendToLanguage("es", caption)
	r.SetServed("es", false) // captions only
	r.Publish("en", []byte("s1"), time.Now())
	r.SendToLanguage("es", caption)
	r.SetServed("es", true)
	r.Publish("en", []byte("s2"), time.Now())
	r.PublishTranslated("es", protocol.CodecPCM16, []byte("t1"), time.Now())
	got := fmt.Sprint(kinds())
	if want := "[1/0/t0 control 0/1/s1 control 1/1/t1]"; got != want {
		t.Fatalf("es received %s, want %s", got, want)
	}
}

func TestRoomLanguagesAndDistribution(t *testing.T) {
	r := NewRoom(RoomOptions{})
	res, _ := r.Join(newListener("1", "es", false), 0, false)
	if !res.NewLang || res.Count != 1 {
		t.Fatalf("first join: %+v", res)
	}
	res, _ = r.Join(newListener("2", "es", true), 0, false)
	if res.NewLang {
		t.Fatal("es reported new twice")
	}
	newLang, oldEmptied, ok := r.ChangeLanguage("1", "fr")
	if !ok || !newLang || oldEmptied {
		t.Fatalf("change: new %v emptied %v ok %v", newLang, oldEmptied, ok)
	}
	if _, emptied := r.Leave("2"); !emptied {
		t.Fatal("es not reported empty")
	}
	total, dist := r.Distribution()
	if total != 1 || len(dist) != 1 || dist["fr"] != 1 {
		t.Fatalf("distribution %d %v", total, dist)
	}
}

func BenchmarkPublish500(b *testing.B) {
	r := NewRoom(RoomOptions{})
	qs := make([]*Queue, 500)
	for i := range qs {
		qs[i] = NewQueue(QueueOptions{MaxAudio: 1 << 20})
		_, _ = r.Join(&Listener{ID: fmt.Sprint(i), Lang: "es", Queue: qs[i]}, 0, false)
	}
	chunk := make([]byte, 640)
	var batch []*Message
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Publish("en", chunk, time.Now())
		if i%64 == 63 {
			for _, q := range qs {
				batch = q.Take(batch)
			}
		}
	}
}
