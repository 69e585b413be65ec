package wav

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ToSession converts a WAV file's samples to the session format: pcm16,
// 16 kHz, mono.
func ToSession(r *Reader) (io.Reader, error) {
	return Convert(r, r.Format, SessionSampleRate)
}

// Convert returns a reader of 16-bit mono PCM at rate, made from src, which
// holds 16-bit PCM in format from. It streams: memory use does not grow with
// the input.
//
// The conversion is deliberately simple. Channels are mixed down by
// averaging. The rate is changed by linear interpolation between
// neighbouring samples with no low-pass filter, so downsampling folds
// frequencies above the new Nyquist limit back into the signal. That is fine
// for speech fed to a broadcast test or demo, not for music.
//
// N input frames give ceil(N*rate/from.SampleRate) output samples; a
// trailing partial frame is dropped.
func Convert(src io.Reader, from Format, rate int) (io.Reader, error) {
	if from.BitsPerSample != 16 {
		return nil, fmt.Errorf("%w: %d bits per sample, only 16 is supported", ErrUnsupported, from.BitsPerSample)
	}
	if from.Channels < 1 || from.Channels > maxChannels {
		return nil, fmt.Errorf("%w: %d channels", ErrUnsupported, from.Channels)
	}
	if from.SampleRate < 1 || from.SampleRate > maxSampleRate || rate < 1 || rate > maxSampleRate {
		return nil, fmt.Errorf("%w: cannot convert %d Hz to %d Hz", ErrUnsupported, from.SampleRate, rate)
	}
	return &converter{
		src:       src,
		frameSize: from.FrameSize(),
		channels:  from.Channels,
		inRate:    uint64(from.SampleRate),
		outRate:   uint64(rate),
	}, nil
}

type converter struct {
	src       io.Reader
	frameSize int
	channels  int
	inRate    uint64
	outRate   uint64

	rbuf []byte  // read buffer
	raw  []byte  // input bytes not yet forming a whole frame
	in   []int16 // mono input samples; in[0] is input sample number base
	base uint64
	n    uint64 // number of the next output sample
	out  []byte // converted bytes not yet returned

	eof  bool  // src is exhausted
	err  error // src's error other than io.EOF, returned after the tail
	done bool
}

// outChunk bounds how much output is converted per fill, so Read returns
// promptly on large inputs.
const outChunk = 4096

func (c *converter) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.done {
			if c.err != nil {
				return 0, c.err
			}
			return 0, io.EOF
		}
		c.emit()
		if len(c.out) > 0 {
			break
		}
		if c.eof {
			c.done = true
			continue
		}
		c.fill()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads input and decodes whole frames into mono samples.
func (c *converter) fill() {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 8192)
	}
	m, err := c.src.Read(c.rbuf)
	c.raw = append(c.raw, c.rbuf[:m]...)
	frames := len(c.raw) / c.frameSize
	for i := range frames {
		frame := c.raw[i*c.frameSize : (i+1)*c.frameSize]
		var sum int64
		for ch := range c.channels {
			sum += int64(int16(binary.LittleEndian.Uint16(frame[2*ch:])))
		}
		c.in = append(c.in, int16(sum/int64(c.channels)))
	}
	c.raw = c.raw[:copy(c.raw, c.raw[frames*c.frameSize:])]
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil:
		c.eof, c.err = true, err
	}
}

// emit converts as many output samples as the buffered input allows. Output
// sample n sits at input position n*inRate/outRate, kept as an exact
// fraction so long streams do not drift.
func (c *converter) emit() {
	avail := c.base + uint64(len(c.in))
	for len(c.out) < outChunk {
		pos := c.n * c.inRate
		idx, frac := pos/c.outRate, pos%c.outRate
		if idx >= avail {
			break
		}
		s0 := int64(c.in[idx-c.base])
		v := s0
		if frac != 0 {
			if idx+1 < avail {
				s1 := int64(c.in[idx+1-c.base])
				v = s0 + (s1-s0)*int64(frac)/int64(c.outRate)
			} else if !c.eof {
				break // the right neighbour has not been read yet
			}
		}
		c.out = binary.LittleEndian.AppendUint16(c.out, uint16(int16(v)))
		c.n++
	}
	// Input before the next output's left neighbour is no longer needed.
	if keep := c.n * c.inRate / c.outRate; keep > c.base {
		drop := min(keep-c.base, uint64(len(c.in)))
		c.in = c.in[:copy(c.in, c.in[drop:])]
		c.base += drop
	}
}
