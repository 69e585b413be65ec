package client

import (
	"errors"
	"testing"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

func TestDecoderPCM(t *testing.T) {
	d, err := NewDecoder(protocol.CodecPCM16)
	if err != nil || CodecAvailable(protocol.CodecPCM16) != nil {
		t.Fatal(err)
	}
	out, err := d.Decode(nil, []byte{1, 2, 3, 4, 5})
	if err != nil || string(out) != "\x01\x02\x03\x04\x05" {
		t.Fatalf("pcm passthrough: %x %v", out, err)
	}
	if out, _ = d.Conceal(out, 3); len(out) != 5 {
		t.Fatalf("pcm gaps are not filled: %d bytes", len(out))
	}
	if _, err := NewDecoder("mp3"); err == nil {
		t.Fatal("mp3 decoder")
	}
}

// In a build without libopus the Opus decoder is refused with the reason.
func TestDecoderOpusAvailability(t *testing.T) {
	_, err := NewDecoder(protocol.CodecOpus)
	avail := CodecAvailable(protocol.CodecOpus)
	if opus.Available {
		if err != nil || avail != nil {
			t.Fatalf("opus build: %v, %v", err, avail)
		}
		return
	}
	if !errors.Is(err, opus.ErrUnavailable) || !errors.Is(avail, opus.ErrUnavailable) {
		t.Fatalf("plain build: %v, %v; want opus.ErrUnavailable", err, avail)
	}
}
