package client

import (
	"fmt"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// CodecAvailable reports whether this build can encode and decode codec:
// nil for pcm16 always; for opus, an error saying why not in a build
// without libopus (docs/architecture.md, "Dependencies").
func CodecAvailable(codec string) error {
	switch codec {
	case protocol.CodecPCM16:
		return nil
	case protocol.CodecOpus:
		if opus.Available {
			return nil
		}
		return &opus.UnavailableError{Op: "codec"}
	}
	return fmt.Errorf("unknown codec %q", codec)
}

// DefaultMaxConceal bounds the concealment of one gap: Opus's concealment
// fades to silence within about 100 ms, so longer gaps gain nothing from
// more of it.
const DefaultMaxConceal = 200 * time.Millisecond

// Decoder turns the chunks of one listener stream into PCM16 (16 kHz mono,
// little-endian), whichever codec carries them, and conceals the gaps of an
// Opus stream. It is not safe for concurrent use.
type Decoder struct {
	// MaxConceal bounds the audio Conceal makes for one gap; 0 means
	// DefaultMaxConceal.
	MaxConceal time.Duration

	codec string
	opus  *opus.Decoder
	pcm   []int16
}

// NewDecoder returns a decoder of codec (the "codec" of sessionJoined). For
// opus in a build without libopus it returns an error wrapping
// opus.ErrUnavailable.
func NewDecoder(codec string) (*Decoder, error) {
	d := &Decoder{codec: codec}
	switch codec {
	case protocol.CodecPCM16:
	case protocol.CodecOpus:
		dec, err := opus.NewDecoder()
		if err != nil {
			return nil, err
		}
		d.opus = dec
	default:
		return nil, fmt.Errorf("cannot decode codec %q", codec)
	}
	return d, nil
}

// Codec is the codec the decoder reads.
func (d *Decoder) Codec() string { return d.codec }

// Decode appends the PCM16 of one chunk to dst: a pcm16 chunk as it is, an
// Opus packet decoded.
func (d *Decoder) Decode(dst, chunk []byte) ([]byte, error) {
	if d.opus == nil {
		return append(dst, chunk...), nil
	}
	var err error
	if d.pcm, err = d.opus.Decode(d.pcm[:0], chunk); err != nil {
		return dst, err
	}
	return wav.AppendPCM16(dst, d.pcm), nil
}

// Conceal appends the audio that stands in for missing chunks of an Opus
// stream: the decoder's loss concealment for that many packets of the last
// packet's duration, at most MaxConceal. A pcm16 stream gets nothing (its
// gaps are left out, as they always were), nor does an Opus stream before
// its first packet.
func (d *Decoder) Conceal(dst []byte, missing int64) ([]byte, error) {
	if d.opus == nil || missing <= 0 || d.opus.LastPacketSamples() == 0 {
		return dst, nil
	}
	limit := d.MaxConceal
	if limit <= 0 {
		limit = DefaultMaxConceal
	}
	n := min(missing*int64(d.opus.LastPacketSamples()), int64(limit)*opus.SampleRate/int64(time.Second))
	var err error
	if d.pcm, err = d.opus.Conceal(d.pcm[:0], int(n)); err != nil {
		return dst, err
	}
	return wav.AppendPCM16(dst, d.pcm), nil
}

// Reset forgets the stream, for a new one (another language, another
// kind).
func (d *Decoder) Reset() error {
	if d.opus == nil {
		return nil
	}
	return d.opus.Reset()
}
