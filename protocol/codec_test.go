package protocol

import (
	"testing"

	"github.com/pentecost/pentecost"
)

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]string{"": CodecPCM16, "opus": CodecOpus, " OPUS ": CodecOpus, "Pcm16": CodecPCM16} {
		if got, err := ParseCodec("codec", in, CodecPCM16); err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := ParseCodec("codec", "", CodecOpus); got != CodecOpus {
		t.Errorf("empty with default opus: %q", got)
	}
	for _, in := range []string{"mp3", "pcm", "opus16"} {
		_, err := ParseCodec("codec", in, CodecPCM16)
		if e := pentecost.AsError(err); e == nil || e.Code != pentecost.ErrInvalidParameter || e.Details["field"] != "codec" {
			t.Errorf("ParseCodec(%q): %v, want INVALID_PARAMETER codec", in, err)
		}
	}
}

func TestPacketMs(t *testing.T) {
	for in, want := range map[string]int{"": 0, "20": 20, " 40": 40, "60": 60} {
		if got, err := ParsePacketMs(in); err != nil || got != want {
			t.Errorf("ParsePacketMs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "30", "20ms", "-20", "1e2", "120"} {
		_, err := ParsePacketMs(in)
		if e := pentecost.AsError(err); e == nil || e.Code != pentecost.ErrInvalidParameter || e.Details["field"] != "packetMs" {
			t.Errorf("ParsePacketMs(%q): %v, want INVALID_PARAMETER packetMs", in, err)
		}
	}
	if ms, err := CheckPacketMs(0); err != nil || ms != 0 {
		t.Errorf("CheckPacketMs(0) = %d, %v", ms, err)
	}
	if _, err := CheckPacketMs(10); err == nil {
		t.Error("CheckPacketMs(10) accepted")
	}
}

func TestDecodeClientCodecFields(t *testing.T) {
	m, err := DecodeClient([]byte(`{"action":"createSession","sourceLanguage":"en","packetMs":40}`))
	if err != nil || m.PacketMs == nil || *m.PacketMs != 40 {
		t.Fatalf("packetMs 40: %v %v", m, err)
	}
	m, err = DecodeClient([]byte(`{"action":"joinSession","sessionId":"golden-eagle-427","targetLanguage":"es","codec":"opus"}`))
	if err != nil || m.Codec != CodecOpus {
		t.Fatalf("codec opus: %v %v", m, err)
	}
	for _, in := range []string{`{"action":"createSession","packetMs":"40"}`, `{"action":"createSession","packetMs":40.5}`} {
		_, err := DecodeClient([]byte(in))
		if e := pentecost.AsError(err); e == nil || e.Code != pentecost.ErrInvalidParameter || e.Details["field"] != "packetMs" {
			t.Errorf("%s: %v, want INVALID_PARAMETER packetMs", in, err)
		}
	}
	_, err = DecodeClient([]byte(`{"action":"joinSession","codec":7}`))
	if e := pentecost.AsError(err); e == nil || e.Details["field"] != "codec" {
		t.Errorf("codec as number: %v", err)
	}
}
