package opus

import "fmt"

// Encoder encodes 16 kHz mono PCM16 into Opus packets of one fixed
// duration. It is not safe for concurrent use.
type Encoder struct {
	cfg     EncoderConfig
	frame   int // samples per packet
	lib     *libEncoder
	pending []int16 // Push's samples short of a whole packet
	packet  []byte  // Push's scratch packet
}

// NewEncoder returns an encoder for cfg, or an *UnavailableError in a
// build without libopus.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lib, err := newLibEncoder(cfg)
	if err != nil {
		return nil, err
	}
	return &Encoder{cfg: cfg, frame: cfg.FrameSamples(), lib: lib}, nil
}

// Config returns the encoder's configuration, defaults filled in.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// FrameSamples is the number of samples Encode takes: one packet's worth.
func (e *Encoder) FrameSamples() int { return e.frame }

// Encode encodes exactly FrameSamples samples into one packet, appended to
// dst.
func (e *Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != e.frame {
		return dst, fmt.Errorf("opus: encode %d samples: a %d ms packet takes %d", len(pcm), e.cfg.PacketMs, e.frame)
	}
	return e.lib.encode(dst, pcm)
}

// Push takes PCM of any length and calls emit with each packet completed,
// keeping the remainder for the next call. The packet passed to emit is
// reused after emit returns.
func (e *Encoder) Push(pcm []int16, emit func(packet []byte) error) error {
	for len(pcm) > 0 {
		if len(e.pending) == 0 && len(pcm) >= e.frame {
			if err := e.emit(pcm[:e.frame], emit); err != nil {
				return err
			}
			pcm = pcm[e.frame:]
			continue
		}
		n := min(e.frame-len(e.pending), len(pcm))
		e.pending = append(e.pending, pcm[:n]...)
		pcm = pcm[n:]
		if len(e.pending) == e.frame {
			err := e.emit(e.pending, emit)
			e.pending = e.pending[:0]
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Pending is the number of samples Push holds short of a packet.
func (e *Encoder) Pending() int { return len(e.pending) }

// Flush encodes what Push holds, padded with silence to a whole packet.
// It does nothing when Push holds nothing.
func (e *Encoder) Flush(emit func(packet []byte) error) error {
	if len(e.pending) == 0 {
		return nil
	}
	for len(e.pending) < e.frame {
		e.pending = append(e.pending, 0)
	}
	err := e.emit(e.pending, emit)
	e.pending = e.pending[:0]
	return err
}

// Reset drops what Push holds and the codec's state, for a new stream.
func (e *Encoder) Reset() error {
	e.pending = e.pending[:0]
	return e.lib.reset()
}

func (e *Encoder) emit(pcm []int16, emit func([]byte) error) error {
	p, err := e.lib.encode(e.packet[:0], pcm)
	if err != nil {
		return err
	}
	e.packet = p
	return emit(p)
}

// Decoder decodes Opus packets into 16 kHz mono PCM16 and conceals lost
// ones. It is not safe for concurrent use.
type Decoder struct {
	lib  *libDecoder
	last int // samples of the last packet decoded, 0 before the first
}

// NewDecoder returns a decoder, or an *UnavailableError in a build without
// libopus.
func NewDecoder() (*Decoder, error) {
	lib, err := newLibDecoder()
	if err != nil {
		return nil, err
	}
	return &Decoder{lib: lib}, nil
}

// Decode decodes one packet and appends its samples to dst. A packet whose
// framing is malformed (ParsePacket) is refused without touching the
// decoder's state; the caller may Conceal its duration instead.
func (d *Decoder) Decode(dst []int16, packet []byte) ([]int16, error) {
	p, err := ParsePacket(packet)
	if err != nil {
		return dst, err
	}
	n := p.Samples(SampleRate)
	dst, out := grow(dst, n)
	got, err := d.lib.decode(packet, out)
	if err != nil {
		return dst[:len(dst)-n], err
	}
	d.last = got
	return dst[:len(dst)-n+got], nil
}

// LastPacketSamples is the length of the last packet decoded, in samples:
// the duration to conceal for each packet a gap says is missing. It is 0
// before the first packet.
func (d *Decoder) LastPacketSamples() int { return d.last }

// Conceal appends samples of packet-loss concealment to dst: what libopus
// extrapolates from the packets before the gap, fading to silence over
// about 100 ms. samples is rounded up to a whole 2.5 ms.
func (d *Decoder) Conceal(dst []int16, samples int) ([]int16, error) {
	const quantum = SampleRate / 400 // 2.5 ms
	const most = SampleRate * 60 / 1000
	samples = (samples + quantum - 1) / quantum * quantum
	for samples > 0 {
		n := min(samples, most)
		var out []int16
		dst, out = grow(dst, n)
		if err := d.lib.conceal(out); err != nil {
			return dst[:len(dst)-n], err
		}
		samples -= n
	}
	return dst, nil
}

// Reset forgets the stream decoded so far, for a new stream.
func (d *Decoder) Reset() error {
	d.last = 0
	return d.lib.reset()
}

// grow extends dst by n samples and returns it with the new part, whose
// capacity is exactly n (libopus sizes its output by the capacity).
func grow(dst []int16, n int) ([]int16, []int16) {
	l := len(dst)
	if cap(dst)-l < n {
		nd := make([]int16, l, 2*cap(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:l+n]
	return dst, dst[l : l+n : l+n]
}
