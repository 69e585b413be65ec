//go:build opus

package processor

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/testserver"
)

// opusPackets encodes a second of a 300 Hz tone into packets of ms.
func opusPackets(t *testing.T, ms int) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: ms})
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, SampleRate)
	for i := range pcm {
		pcm[i] = int16(6000 * math.Sin(2*math.Pi*300*float64(i)/SampleRate))
	}
	var pkts [][]byte
	if err := enc.Push(pcm, func(p []byte) error { pkts = append(pkts, bytes.Clone(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	return pkts
}

// frequency decodes packets and estimates the dominant frequency from zero
// crossings, skipping the decoder's first 100 ms.
func frequency(t *testing.T, pkts [][]byte) float64 {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for _, p := range pkts {
		if pcm, err = dec.Decode(pcm, p); err != nil {
			t.Fatal(err)
		}
	}
	pcm = pcm[SampleRate/10:]
	crossings := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			crossings++
		}
	}
	return float64(crossings) / 2 / (float64(len(pcm)) / SampleRate)
}

// The tone mode on an Opus stream: Opus in, the language's tone out, as
// packets of the session's duration.
func TestToneOnOpus(t *testing.T) {
	for _, ms := range []int{0, 20, 60} { // 0: the server did not say; learned from the packets
		out := newFakeOutput()
		w, err := (&Tone{CaptionEvery: -1}).Start(context.Background(), Stream{Language: "de", Format: "opus", PacketMs: ms}, out)
		if err != nil {
			t.Fatal(err)
		}
		in := opusPackets(t, 40)
		for i, p := range in {
			if err := w.Process(Chunk{Data: p, Sequence: uint32(i)}); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Close()
		got := out.audioChunks()
		want := ms
		if want == 0 {
			want = 40
		}
		if len(got) != len(in)*40/want {
			t.Fatalf("packetMs %d: %d packets out of %d in", ms, len(got), len(in))
		}
		for i, p := range got {
			pk, err := opus.ParsePacket(p)
			if err != nil || pk.Duration() != time.Duration(want)*time.Millisecond {
				t.Fatalf("packetMs %d: packet %d: %v %v", ms, i, pk.Duration(), err)
			}
		}
		if f, wantHz := frequency(t, got), ToneFrequency("de"); math.Abs(f-wantHz) > wantHz*0.03 {
			t.Fatalf("packetMs %d: the tone is at %.0f Hz, want %.0f", ms, f, wantHz)
		}
		if len(out.logs) != 0 {
			t.Fatalf("logs %q", out.logs)
		}
	}
}

// A packet that cannot be decoded is skipped and said once, not fatal.
func TestPCMOnlySkipsBadPackets(t *testing.T) {
	out := newFakeOutput()
	w, err := PCMOnly(&Tone{CaptionEvery: -1}).Start(context.Background(), Stream{Language: "es", Format: "opus", PacketMs: 20}, out)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Process(Chunk{Data: []byte("not an opus packet")}); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.logs) != 1 || len(out.audioChunks()) != 0 {
		t.Fatalf("logs %q, %d chunks", out.logs, len(out.audioChunks()))
	}
	// pcm16 streams go through PCMOnly untouched.
	w, _ = PCMOnly(&Tone{CaptionEvery: -1}).Start(context.Background(), Stream{Language: "es", Format: "pcm16"}, out)
	_ = w.Process(Chunk{Data: make([]byte, 640)})
	if n := len(out.audioChunks()); n != 1 || len(out.audioChunks()[0]) != 640 {
		t.Fatalf("pcm16 through PCMOnly: %d chunks", n)
	}
}

// End to end through a server: a speaker sends Opus and the Spanish
// listener hears the tone of "es" as Opus, whether the processor takes pcm16
// (the server decodes and encodes) or Opus (PCMOnly does, in the processor).
func TestToneOpusSessionEndToEnd(t *testing.T) {
	for _, codec := range []string{"pcm16", "opus"} {
		t.Run(codec, func(t *testing.T) {
			n := testserver.Start(t, nil)
			e := startEngine(t, n, &Tone{}, func(o *Options) { o.Codec = codec })
			sp, sid := speaker(t, n, "opus")
			es := dial(t, n, "sessionId", sid, "targetLanguage", "es", "codec", "opus")
			expect(t, es, "sessionJoined")
			e.rec.wait(t, 0, "languages es", langsAre(e.conn, sid, "es"))
			var got [][]byte
			for _, p := range opusPackets(t, 20) {
				send(t, sp, p)
			}
			for len(got) < 15 {
				f := nextTranslated(t, es, nil)
				if _, err := opus.ParsePacket(f.Chunk); err != nil {
					t.Fatalf("the listener got a chunk that is not an Opus packet: %v", err)
				}
				got = append(got, bytes.Clone(f.Chunk))
			}
			if f, want := frequency(t, got), ToneFrequency("es"); math.Abs(f-want) > want*0.03 {
				t.Fatalf("the Spanish listener hears %.0f Hz, want %.0f", f, want)
			}
		})
	}
}

func (o *fakeOutput) audioChunks() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([][]byte(nil), o.audio...)
}
