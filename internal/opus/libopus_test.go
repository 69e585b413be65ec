//go:build opus

package opus

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/audiotest"
)

const sentence = "In the beginning was the Word, and the Word was with God. Welcome to the service this morning."

// encodeAll encodes pcm in packets of ms and returns them.
func encodeAll(t testing.TB, pcm []int16, cfg EncoderConfig) [][]byte {
	t.Helper()
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	emit := func(p []byte) error { pkts = append(pkts, bytes.Clone(p)); return nil }
	if err := enc.Push(pcm, emit); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return pkts
}

// decodeAll decodes the packets, concealing those for which lost says so.
func decodeAll(t testing.TB, pkts [][]byte, lost func(i int) bool) []int16 {
	t.Helper()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	for i, p := range pkts {
		if lost != nil && lost(i) {
			if out, err = dec.Conceal(out, dec.LastPacketSamples()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if out, err = dec.Decode(out, p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	return out
}

func TestAvailable(t *testing.T) {
	if !Available || !strings.HasPrefix(Version(), "libopus") {
		t.Fatalf("Available %v, Version %q", Available, Version())
	}
}

// Each packet holds exactly the configured duration of wideband speech,
// and the stream's bitrate is near the target.
func TestEncodePacketDurations(t *testing.T) {
	speech := audiotest.Speech(t, sentence)
	seconds := float64(len(speech)) / SampleRate
	for _, ms := range PacketDurations {
		pkts := encodeAll(t, speech, EncoderConfig{PacketMs: ms})
		if want := (len(speech) + ms*16 - 1) / (ms * 16); len(pkts) != want {
			t.Errorf("%d ms: %d packets for %.2f s, want %d", ms, len(pkts), seconds, want)
		}
		total := 0
		for i, b := range pkts {
			p, err := ParsePacket(b)
			if err != nil {
				t.Fatalf("%d ms: packet %d: %v", ms, i, err)
			}
			if p.Duration() != time.Duration(ms)*time.Millisecond || p.Bandwidth > Wideband || p.Stereo {
				t.Fatalf("%d ms: packet %d is %v %v stereo=%v", ms, i, p.Duration(), p.Bandwidth, p.Stereo)
			}
			total += len(b)
		}
		// VBR spends less in pauses: between a half and the target.
		kbps := float64(total) * 8 / seconds / 1000
		if kbps < DefaultBitrate/2000 || kbps > DefaultBitrate/1000*1.1 {
			t.Errorf("%d ms: %.1f kbit/s, want about %d", ms, kbps, DefaultBitrate/1000)
		}
		t.Logf("%d ms: %d packets, %.1f kbit/s", ms, len(pkts), kbps)
	}
}

// Speech survives the round trip at every packet duration, as the
// listener's ears would judge it (audiotest).
func TestRoundTripQuality(t *testing.T) {
	speech := audiotest.Speech(t, sentence)
	for _, ms := range PacketDurations {
		t.Run(time.Duration(ms*int(time.Millisecond)).String(), func(t *testing.T) {
			out := decodeAll(t, encodeAll(t, speech, EncoderConfig{PacketMs: ms}), nil)
			if len(out) < len(speech) || len(out) >= len(speech)+ms*16 {
				t.Errorf("decoded %d samples from %d", len(out), len(speech))
			}
			audiotest.Check(t, speech, out)
		})
	}
}

// The quality check fails the broken paths a listener would hear: wrong
// byte order, wrong sample rate, lost packets, concealed or not, a gain
// applied on the way.
func TestQualityCheckCatchesBrokenPaths(t *testing.T) {
	speech := audiotest.Speech(t, sentence)
	pkts := encodeAll(t, speech, EncoderConfig{PacketMs: 20})
	good := decodeAll(t, pkts, nil)
	swapped := make([]int16, len(good))
	for i, v := range good {
		swapped[i] = int16(uint16(v)>>8 | uint16(v)<<8)
	}
	var fast []int16 // 16 kHz audio played at 24 kHz
	for i := 0; i+2 < len(good); i += 3 {
		fast = append(fast, good[i], good[i+1])
	}
	concealed := decodeAll(t, pkts, func(i int) bool { return i%20 == 10 })
	quiet := make([]int16, len(good))
	for i, v := range good {
		quiet[i] = v / 2
	}
	var dropped [][]byte
	for i, p := range pkts {
		if i%20 != 10 {
			dropped = append(dropped, p)
		}
	}
	for name, got := range map[string][]int16{
		"byte order swapped":      swapped,
		"wrong sample rate":       fast,
		"5% of packets concealed": concealed,
		"gain halved":             quiet,
		"5% of packets dropped":   decodeAll(t, dropped, nil),
		"encoded at the wrong rate (8 kHz read as 16 kHz)": decodeAll(t, encodeAll(t, halve(good), EncoderConfig{}), nil),
	} {
		r, err := audiotest.Compare(speech, got)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(r.Problems()) == 0 {
			t.Errorf("%s passed the check: %v", name, r)
		} else {
			t.Logf("%s: %v", name, r.Problems())
		}
	}
}

// Concealment fills exactly the gap and decoding carries on after it.
func TestConceal(t *testing.T) {
	speech := audiotest.Speech(t, "Testing one two three.")
	pkts := encodeAll(t, speech, EncoderConfig{PacketMs: 40})
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	out, err := dec.Decode(nil, pkts[0])
	if err != nil || len(out) != 640 || dec.LastPacketSamples() != 640 {
		t.Fatalf("first packet: %d samples, last %d, %v", len(out), dec.LastPacketSamples(), err)
	}
	out, err = dec.Conceal(out, 3*dec.LastPacketSamples())
	if err != nil || len(out) != 4*640 {
		t.Fatalf("after concealing 3 packets: %d samples, %v", len(out), err)
	}
	if out, err = dec.Conceal(out, 1); err != nil || len(out) != 4*640+40 {
		t.Fatalf("1 sample rounds up to 2.5 ms: %d, %v", len(out), err)
	}
	if out, err = dec.Decode(out, pkts[4]); err != nil || len(out) != 5*640+40 {
		t.Fatalf("decode after a gap: %d, %v", len(out), err)
	}
	if _, err := dec.Decode(out, []byte{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty packet: %v", err)
	}
	if err := dec.Reset(); err != nil || dec.LastPacketSamples() != 0 {
		t.Fatalf("reset: %v", err)
	}
}

// Push cuts any chunking of the input into the same packets as Encode of
// whole frames, and Flush pads the tail.
func TestPushMatchesEncode(t *testing.T) {
	speech := audiotest.Speech(t, "Testing one two three.")
	whole, err := NewEncoder(EncoderConfig{PacketMs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; i+320 <= len(speech); i += 320 {
		p, err := whole.Encode(nil, speech[i:i+320])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	if _, err := whole.Encode(nil, speech[:100]); err == nil {
		t.Error("Encode took a partial frame")
	}
	pushed, _ := NewEncoder(EncoderConfig{PacketMs: 20})
	var got [][]byte
	emit := func(p []byte) error { got = append(got, bytes.Clone(p)); return nil }
	for i := 0; i < len(speech); i += 333 {
		if err := pushed.Push(speech[i:min(i+333, len(speech))], emit); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) || pushed.Pending() != len(speech)%320 {
		t.Fatalf("%d packets (pending %d), want %d (pending %d)", len(got), pushed.Pending(), len(want), len(speech)%320)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
	if err := pushed.Flush(emit); err != nil || len(got) != len(want)+1 || pushed.Pending() != 0 {
		t.Fatalf("flush: %d packets, pending %d, %v", len(got), pushed.Pending(), err)
	}
	if err := pushed.Reset(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEncode measures the encoder's cost per second of audio: the
// server encodes each (session, language) stream once, whatever the number
// of listeners. Its "ms/stream-s" is the time one core spends encoding one
// second of audio (the loop is single-threaded, so time is CPU time).
func BenchmarkEncode(b *testing.B) {
	for _, ms := range PacketDurations {
		b.Run(time.Duration(ms*int(time.Millisecond)).String(), func(b *testing.B) {
			speech := audiotest.Speech(b, sentence)
			enc, err := NewEncoder(EncoderConfig{PacketMs: ms})
			if err != nil {
				b.Fatal(err)
			}
			frame := enc.FrameSamples()
			var pkt []byte
			b.ResetTimer()
			i := 0
			for n := 0; n < b.N; n++ {
				if i+frame > len(speech) {
					i = 0
				}
				if pkt, err = enc.Encode(pkt[:0], speech[i:i+frame]); err != nil {
					b.Fatal(err)
				}
				i += frame
			}
			audio := float64(b.N) * float64(ms) / 1000
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/audio, "ms/stream-s")
		})
	}
}

// halve keeps every other sample: 16 kHz audio taken for 8 kHz.
func halve(s []int16) []int16 {
	out := make([]int16, 0, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		out = append(out, s[i])
	}
	return out
}
