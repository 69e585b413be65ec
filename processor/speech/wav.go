package speech

import (
	"errors"
	"fmt"
	"io"

	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/processor"
)

// DecodeWAV reads a WAV stream of 16-bit PCM at any rate and channel count
// (what speech synthesizers write) and passes it to emit as pcm16 16 kHz
// mono, about 128 ms at a time, as it arrives: a synthesizer that streams
// is heard before it finishes.
//
// The rate conversion interpolates linearly, without a low-pass filter
// (internal/wav.Convert): synthetic speech stays clear, though the top
// octave of a 22-24 kHz voice folds back faintly.
func DecodeWAV(r io.Reader, emit func(pcm []int16)) error {
	wr, err := wav.NewReader(r)
	if err != nil {
		return fmt.Errorf("synthesized audio: %w", err)
	}
	conv, err := wav.Convert(wr, wr.Format, processor.SampleRate)
	if err != nil {
		return fmt.Errorf("synthesized audio: %w", err)
	}
	buf := make([]byte, 4096)
	carry := 0
	for {
		n, err := conv.Read(buf[carry:])
		n += carry
		whole := n &^ 1
		if whole > 0 {
			emit(wav.AppendSamples(nil, buf[:whole]))
		}
		carry = copy(buf, buf[whole:n])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("synthesized audio: %w", err)
		}
	}
}

// PCMBytes encodes samples as pcm16 little-endian.
func PCMBytes(pcm []int16) []byte {
	return wav.AppendPCM16(nil, pcm)
}
