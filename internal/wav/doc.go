// Package wav reads and writes RIFF/WAVE files of 16-bit PCM, and converts
// PCM to the session format of the wire protocol (pcm16, 16 kHz, mono).
//
// It covers what the command-line clients need and no more: 16-bit integer
// PCM only (WAVE_FORMAT_PCM or WAVE_FORMAT_EXTENSIBLE with the PCM subformat),
// any sample rate and channel count.
package wav

// The session format of the wire protocol (docs/protocol.md, "Audio and binary frames").
const (
	SessionSampleRate = 16000
	SessionChannels   = 1
)

// Format describes the PCM samples of a file.
type Format struct {
	SampleRate    int
	Channels      int
	BitsPerSample int
}

// FrameSize is the size in bytes of one sample for every channel.
func (f Format) FrameSize() int { return f.Channels * f.BitsPerSample / 8 }

// ByteRate is the number of PCM bytes per second of audio.
func (f Format) ByteRate() int { return f.SampleRate * f.FrameSize() }
