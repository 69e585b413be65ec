//go:build opus

package opus

import (
	"fmt"

	hraban "gopkg.in/hraban/opus.v2"
)

// Available reports whether this build has the Opus codec.
const Available = true

// Version is the linked libopus's version string.
func Version() string { return hraban.Version() }

// maxPacketBytes bounds one encoded packet: 60 ms is at most three 20 ms
// frames of 1275 bytes (RFC 6716, 3.2.1) plus framing.
const maxPacketBytes = 3*1275 + 7

type libEncoder struct {
	cfg EncoderConfig
	enc *hraban.Encoder
	buf []byte
}

func newLibEncoder(cfg EncoderConfig) (*libEncoder, error) {
	e := &libEncoder{cfg: cfg, buf: make([]byte, maxPacketBytes)}
	if err := e.init(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *libEncoder) init() error {
	app := hraban.AppVoIP
	if e.cfg.Application == Audio {
		app = hraban.AppAudio
	}
	enc, err := hraban.NewEncoder(SampleRate, Channels, app)
	if err != nil {
		return fmt.Errorf("opus: new encoder: %w", err)
	}
	set := []struct {
		what string
		err  error
	}{
		{"bitrate", enc.SetBitrate(e.cfg.Bitrate)},
		{"bandwidth", enc.SetMaxBandwidth(hraban.Wideband)},
		{"fec", enc.SetInBandFEC(false)},
		{"dtx", enc.SetDTX(false)},
	}
	if e.cfg.Complexity > 0 {
		set = append(set, struct {
			what string
			err  error
		}{"complexity", enc.SetComplexity(e.cfg.Complexity)})
	}
	for _, s := range set {
		if s.err != nil {
			return fmt.Errorf("opus: set %s: %w", s.what, s.err)
		}
	}
	e.enc = enc
	return nil
}

func (e *libEncoder) encode(dst []byte, pcm []int16) ([]byte, error) {
	n, err := e.enc.Encode(pcm, e.buf)
	if err != nil {
		return dst, fmt.Errorf("opus: encode: %w", err)
	}
	return append(dst, e.buf[:n]...), nil
}

func (e *libEncoder) reset() error {
	if err := e.enc.Reset(); err != nil {
		return fmt.Errorf("opus: reset encoder: %w", err)
	}
	return nil
}

type libDecoder struct {
	dec *hraban.Decoder
}

func newLibDecoder() (*libDecoder, error) {
	dec, err := hraban.NewDecoder(SampleRate, Channels)
	if err != nil {
		return nil, fmt.Errorf("opus: new decoder: %w", err)
	}
	return &libDecoder{dec: dec}, nil
}

func (d *libDecoder) decode(packet []byte, out []int16) (int, error) {
	n, err := d.dec.Decode(packet, out)
	if err != nil {
		return 0, fmt.Errorf("opus: decode: %w", err)
	}
	return n, nil
}

func (d *libDecoder) conceal(out []int16) error {
	if err := d.dec.DecodePLC(out); err != nil {
		return fmt.Errorf("opus: conceal: %w", err)
	}
	return nil
}

// reset starts a fresh decoder: hraban/opus has no reset for decoders.
func (d *libDecoder) reset() error {
	nd, err := newLibDecoder()
	if err != nil {
		return err
	}
	*d = *nd
	return nil
}
