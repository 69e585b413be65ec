package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
)

func TestDecodeClient(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		code  string // "" = ok
		field string
	}{
		{"heartbeat", `{"action":"heartbeat"}`, "", ""},
		{"whitespace", "  {\"action\":\"heartbeat\"}\n", "", ""},
		{"not json", `hello`, pentecost.ErrInvalidMessage, ""},
		{"truncated", `{"action":"heart`, pentecost.ErrInvalidMessage, ""},
		{"array", `[1,2]`, pentecost.ErrInvalidMessage, ""},
		{"empty", ``, pentecost.ErrInvalidMessage, ""},
		{"no action", `{"sessionId":"golden-eagle-427"}`, pentecost.ErrMissingParameter, "action"},
		{"empty action", `{"action":""}`, pentecost.ErrMissingParameter, "action"},
		{"volume as string", `{"action":"setVolume","volumeLevel":"loud"}`, pentecost.ErrInvalidParameter, "volumeLevel"},
		{"action as number", `{"action":5}`, pentecost.ErrInvalidParameter, "action"},
		{"trailing garbage", `{"action":"heartbeat"} x`, pentecost.ErrInvalidMessage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeClient([]byte(tt.in))
			if tt.code == "" {
				if err != nil || m == nil {
					t.Fatalf("DecodeClient(%q) = %v", tt.in, err)
				}
				return
			}
			e := pentecost.AsError(err)
			if e == nil || e.Code != tt.code {
				t.Fatalf("DecodeClient(%q) error = %v, want code %s", tt.in, err, tt.code)
			}
			if tt.field != "" && e.Details["field"] != tt.field {
				t.Fatalf("details.field = %v, want %s", e.Details["field"], tt.field)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	if CanonicalAction(ActSendAudio) != ActAudioChunk || CanonicalAction(ActSwitchLanguage) != ActChangeLanguage {
		t.Fatal("aliases not mapped")
	}
	m, err := DecodeClient([]byte(`{"action":"sendAudio","data":"AAE="}`))
	if a, ok := m.Audio(); err != nil || !ok || a != "AAE=" {
		t.Fatalf("legacy data field: %v %q", err, a)
	}
	m, _ = DecodeClient([]byte(`{"action":"audioChunk","audioData":""}`))
	if a, ok := m.Audio(); !ok || a != "" {
		t.Fatal("an empty audioData is present (a 0-byte chunk)")
	}
}

func TestAudioHeaderRoundTrip(t *testing.T) {
	ingest := time.UnixMicro(1_780_000_000_123_456)
	b := make([]byte, AudioHeaderSize+3)
	PutAudioHeader(b, KindTranslated, 7, 0xDEADBEEF, ingest)
	copy(b[AudioHeaderSize:], "abc")
	if b[0] != 1 || b[1] != 1 || b[2] != 0 || b[3] != 7 {
		t.Fatalf("header bytes % x", b[:4])
	}
	h, chunk, err := ParseAudioFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Sequence != 0xDEADBEEF || h.StreamID != 7 || !h.Ingest.Equal(ingest) || string(chunk) != "abc" {
		t.Fatalf("parsed %+v %q", h, chunk)
	}
}

func TestParseAudioFrameErrors(t *testing.T) {
	good := make([]byte, AudioHeaderSize)
	PutAudioHeader(good, KindSource, 0, 1, time.Unix(0, 0))
	for name, b := range map[string][]byte{
		"short":   good[:15],
		"version": append([]byte{2}, good[1:]...),
		"kind":    append([]byte{1, 9}, good[2:]...),
	} {
		if _, _, err := ParseAudioFrame(b); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}

func TestProcessorFrame(t *testing.T) {
	b := make([]byte, ProcessorHeaderSize+2)
	PutProcessorHeader(b, 513, "es")
	b[8], b[9] = 1, 2
	f, err := ParseProcessorFrame(b)
	if err != nil || f.StreamID != 513 || f.Language != "es" || !bytes.Equal(f.Chunk, []byte{1, 2}) {
		t.Fatalf("%+v %v", f, err)
	}
	bad := bytes.Clone(b)
	bad[4] = 'E'
	if _, err := ParseProcessorFrame(bad); err != ErrBadLanguage {
		t.Fatalf("uppercase language: %v", err)
	}
	if _, err := ParseProcessorFrame(b[:ProcessorHeaderSize]); err != ErrEmptyChunk {
		t.Fatalf("empty chunk: %v", err)
	}
}

func TestServerMessagesHaveTypeAndTimestamp(t *testing.T) {
	now := time.UnixMilli(1_780_000_000_000)
	msgs := []Message{
		&HeartbeatAck{Header: H(TypeHeartbeatAck, now)},
		&SessionEnded{Header: H(TypeSessionEnded, now), SessionID: "golden-eagle-427", Reason: "speakerEnded"},
		ErrorFrom(pentecost.Missing("sessionId"), "", now),
	}
	for _, m := range msgs {
		var got map[string]any
		if err := json.Unmarshal(Marshal(m), &got); err != nil {
			t.Fatal(err)
		}
		if got["type"] != m.MessageType() || got["timestamp"] != float64(now.UnixMilli()) {
			t.Fatalf("%s: %v", m.MessageType(), got)
		}
	}
	var e map[string]any
	_ = json.Unmarshal(Marshal(ErrorFrom(pentecost.Missing("sessionId"), "", now)), &e)
	if e["status"] != float64(400) || e["code"] != "MISSING_PARAMETER" || e["details"].(map[string]any)["field"] != "sessionId" {
		t.Fatalf("error message: %v", e)
	}
}
