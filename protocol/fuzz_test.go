package protocol

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost"
)

func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"action":"heartbeat"}`, `{"action":"audioChunk","audioData":"AAAA"}`,
		`{"action":"setVolume","volumeLevel":0.5}`, `{"action":"speakerStateChange","state":{"isPaused":true}}`,
		`{}`, `[]`, `null`, `{"action":1}`, "\xff\xfe", `{"action":"x","timestamp":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClient(b)
		if err != nil {
			if pentecost.AsError(err) == nil {
				t.Fatalf("error is not a protocol error: %v", err)
			}
			return
		}
		if m.Action == "" {
			t.Fatal("decoded a message without action")
		}
	})
}

func FuzzParseAudioFrame(f *testing.F) {
	b := make([]byte, AudioHeaderSize+4)
	PutAudioHeader(b, KindSource, 3, 42, time.UnixMicro(123))
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, chunk, err := ParseAudioFrame(b)
		if err != nil {
			return
		}
		if len(chunk) != len(b)-AudioHeaderSize || h.Version != AudioVersion {
			t.Fatalf("inconsistent parse: %+v len %d of %d", h, len(chunk), len(b))
		}
		out := make([]byte, len(b))
		PutAudioHeader(out, h.Kind, h.StreamID, h.Sequence, h.Ingest)
		copy(out[AudioHeaderSize:], chunk)
		if string(out[:4]) != string(b[:4]) || string(out[4:8]) != string(b[4:8]) {
			t.Fatalf("round trip changed the header: % x -> % x", b[:8], out[:8])
		}
	})
}

func FuzzParseProcessorFrame(f *testing.F) {
	b := make([]byte, ProcessorHeaderSize+1)
	PutProcessorHeader(b, 9, "fr")
	f.Add(b)
	f.Add([]byte{1, 1, 0, 0, 'e', 's', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseProcessorFrame(b)
		if err != nil {
			return
		}
		if len(fr.Chunk) == 0 || len(fr.Language) != 2 || !pentecost.WellFormedLanguage(fr.Language) {
			t.Fatalf("accepted a bad frame: %+v", fr)
		}
	})
}
