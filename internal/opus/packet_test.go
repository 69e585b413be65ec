package opus

import (
	"errors"
	"testing"
	"time"
)

func TestParsePacket(t *testing.T) {
	cases := []struct {
		name   string
		b      []byte
		mode   Mode
		bw     Bandwidth
		frames int
		dur    time.Duration
	}{
		// config 9: SILK wideband 20 ms, code 0.
		{"silk wb 20ms", []byte{9 << 3, 1, 2, 3}, ModeSILK, Wideband, 1, 20 * time.Millisecond},
		// config 11: SILK wideband 60 ms.
		{"silk wb 60ms", []byte{11 << 3, 1}, ModeSILK, Wideband, 1, 60 * time.Millisecond},
		// config 1: SILK narrowband 20 ms, code 1: two equal frames.
		{"code 1", []byte{1<<3 | 1, 1, 2, 3, 4}, ModeSILK, Narrowband, 2, 40 * time.Millisecond},
		// config 13: hybrid superwideband 20 ms, code 2: first frame 2 bytes.
		{"code 2", []byte{13<<3 | 2, 2, 0xa, 0xb, 0xc}, ModeHybrid, SuperWideband, 2, 40 * time.Millisecond},
		// config 15: hybrid fullband 20 ms.
		{"hybrid fb", []byte{15 << 3}, ModeHybrid, Fullband, 1, 20 * time.Millisecond},
		// config 31: CELT fullband 20 ms, stereo, code 3 CBR, 3 frames of 1 byte.
		{"code 3 cbr", []byte{31<<3 | 4 | 3, 3, 1, 2, 3}, ModeCELT, Fullband, 3, 60 * time.Millisecond},
		// config 16: CELT narrowband 2.5 ms, code 3 VBR with padding: 2
		// frames, 1 byte of padding, first frame 1 byte.
		{"code 3 vbr padded", []byte{16<<3 | 3, 0x80 | 0x40 | 2, 1, 1, 0xa, 0xb, 0xc, 0}, ModeCELT, Narrowband, 2, 5 * time.Millisecond},
		// A DTX/lost frame: only the TOC byte.
		{"empty frame", []byte{9 << 3}, ModeSILK, Wideband, 1, 20 * time.Millisecond},
	}
	for _, c := range cases {
		p, err := ParsePacket(c.b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Mode != c.mode || p.Bandwidth != c.bw || p.Frames != c.frames || p.Duration() != c.dur {
			t.Errorf("%s: got %v %v %d frames %v, want %v %v %d %v", c.name, p.Mode, p.Bandwidth, p.Frames, p.Duration(), c.mode, c.bw, c.frames, c.dur)
		}
		if got, want := p.Samples(16000), int(c.dur*16000/time.Second); got != want {
			t.Errorf("%s: %d samples at 16 kHz, want %d", c.name, got, want)
		}
	}
	if p, _ := ParsePacket([]byte{31<<3 | 4 | 3, 3, 1, 2, 3}); !p.Stereo {
		t.Error("stereo bit not read")
	}
}

func TestParsePacketRefusesMalformed(t *testing.T) {
	big := make([]byte, 1+1276)
	cases := map[string][]byte{
		"empty":                       {},
		"code 1 odd":                  {1<<3 | 1, 1, 2, 3},
		"code 2 no length":            {13<<3 | 2},
		"code 2 length past end":      {13<<3 | 2, 5, 1},
		"code 2 two-byte length cut":  {13<<3 | 2, 252},
		"code 3 no count":             {31<<3 | 3},
		"code 3 zero frames":          {31<<3 | 3, 0},
		"code 3 over 120 ms":          {11<<3 | 3, 3, 1, 2, 3}, // 3 x 60 ms
		"code 3 cbr uneven":           {31<<3 | 3, 2, 1, 2, 3},
		"code 3 padding past end":     {31<<3 | 3, 0x40 | 1, 9},
		"code 3 padding length cut":   {31<<3 | 3, 0x40 | 1, 255},
		"code 3 vbr lengths past end": {31<<3 | 3, 0x80 | 2, 9, 1},
		"frame over 1275 bytes":       big,
	}
	for name, b := range cases {
		if _, err := ParsePacket(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncoderConfigChecks(t *testing.T) {
	for _, c := range []EncoderConfig{{PacketMs: 30}, {Bitrate: 1000}, {Complexity: 11}, {Application: 7}} {
		if _, err := NewEncoder(c); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("%+v: err %v, want a configuration error", c, err)
		}
	}
	if n := (EncoderConfig{PacketMs: 60}).FrameSamples(); n != 960 {
		t.Errorf("60 ms frame: %d samples", n)
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, s := range [][]byte{{9 << 3, 1}, {1<<3 | 1, 1, 2}, {13<<3 | 2, 1, 2, 3}, {31<<3 | 3, 0xc2, 1, 1, 2, 3, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if p.Frames < 1 || p.Duration() <= 0 || p.Duration() > 120*time.Millisecond {
			t.Fatalf("accepted %x as %+v (%v)", b, p, p.Duration())
		}
	})
}
