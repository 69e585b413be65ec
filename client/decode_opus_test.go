//go:build opus

package client

import (
	"testing"

	"github.com/pentecost/pentecost/internal/audiotest"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

func TestDecoderOpus(t *testing.T) {
	speech := audiotest.Speech(t, "One, two, three, four.")
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 60})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(protocol.CodecOpus)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	n := 0
	emit := func(p []byte) error {
		n++
		if n == 5 { // lost: conceal it as a gap of one
			out, err = d.Conceal(out, 1)
			return err
		}
		out, err = d.Decode(out, p)
		return err
	}
	if err := enc.Push(speech, emit); err != nil {
		t.Fatal(err)
	}
	if want := n * 960 * 2; len(out) != want {
		t.Fatalf("%d packets (one concealed) gave %d bytes, want %d", n, len(out), want)
	}
	before := len(out)
	if out, _ = d.Conceal(out, 1000); len(out)-before != 2*int(DefaultMaxConceal.Milliseconds())*16 {
		t.Fatalf("a long gap was concealed with %d bytes", len(out)-before)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if out2, _ := d.Conceal(nil, 1); len(out2) != 0 {
		t.Fatal("concealment before the first packet")
	}
}
