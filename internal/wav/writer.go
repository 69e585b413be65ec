package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const headerSize = 44

// Writer writes 16-bit PCM as a WAV file.
//
// When the destination can seek (a regular file), the header is written with
// zero sizes and Close goes back to fill in the RIFF and data sizes. When it
// cannot (a pipe, stdout, a network stream), the header carries 0xFFFFFFFF
// for both sizes, the usual streaming convention meaning "until the end of
// the stream", which ffmpeg, sox and this package's Reader accept.
type Writer struct {
	w        io.Writer
	seeker   io.Seeker // nil when w cannot seek
	start    int64     // offset of the header in w
	n        int64     // PCM bytes written
	closed   bool
	writeErr error
}

// NewWriter writes a WAV header for 16-bit PCM at sampleRate with channels
// to w and returns a Writer for the samples. Close must be called to finish
// the file; it does not close w.
func NewWriter(w io.Writer, sampleRate, channels int) (*Writer, error) {
	if sampleRate < 1 || sampleRate > maxSampleRate {
		return nil, fmt.Errorf("wav: sample rate %d Hz out of range", sampleRate)
	}
	if channels < 1 || channels > maxChannels {
		return nil, fmt.Errorf("wav: %d channels out of range", channels)
	}
	ww := &Writer{w: w}
	size := uint32(streamingSize)
	// *os.File always has Seek, but on a pipe it fails: ask, don't assume.
	if s, ok := w.(io.Seeker); ok {
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			ww.seeker, ww.start, size = s, off, 0
		}
	}
	f := Format{SampleRate: sampleRate, Channels: channels, BitsPerSample: 16}
	if _, err := w.Write(header(f, size)); err != nil {
		return nil, fmt.Errorf("wav: write header: %w", err)
	}
	return ww, nil
}

// header builds a 44-byte canonical header; dataSize 0xFFFFFFFF also sets
// the RIFF size to 0xFFFFFFFF.
func header(f Format, dataSize uint32) []byte {
	riffSize := uint32(streamingSize)
	if dataSize != streamingSize {
		riffSize = riffSizeFor(int64(dataSize))
	}
	le := binary.LittleEndian
	b := make([]byte, 0, headerSize)
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, riffSize)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, formatPCM)
	b = le.AppendUint16(b, uint16(f.Channels))
	b = le.AppendUint32(b, uint32(f.SampleRate))
	b = le.AppendUint32(b, uint32(f.ByteRate()))
	b = le.AppendUint16(b, uint16(f.FrameSize()))
	b = le.AppendUint16(b, uint16(f.BitsPerSample))
	b = append(b, "data"...)
	b = le.AppendUint32(b, dataSize)
	return b
}

// riffSizeFor is the RIFF chunk size for n data bytes: everything after the
// first 8 bytes, the data's pad byte included.
func riffSizeFor(n int64) uint32 {
	return clamp32(headerSize - 8 + n + n&1)
}

func clamp32(n int64) uint32 {
	if n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

// Write writes PCM bytes (little-endian, interleaved).
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("wav: write after Close")
	}
	if w.writeErr != nil {
		return 0, w.writeErr
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	if err != nil {
		w.writeErr = err
	}
	return n, err
}

// Written is the number of PCM bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Close pads the data chunk to an even size, as RIFF requires, and when the
// destination can seek, writes the final sizes into the header. Sizes past
// 4 GiB are stored as 0xFFFFFFFF. It does not close the destination.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.writeErr != nil {
		return w.writeErr
	}
	if w.n&1 == 1 {
		if _, err := w.w.Write([]byte{0}); err != nil {
			return fmt.Errorf("wav: write pad byte: %w", err)
		}
	}
	if w.seeker == nil {
		return nil
	}
	end, err := w.seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("wav: finish header: %w", err)
	}
	if err := w.patch(4, riffSizeFor(w.n)); err != nil {
		return err
	}
	if err := w.patch(40, clamp32(w.n)); err != nil {
		return err
	}
	if _, err := w.seeker.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("wav: finish header: %w", err)
	}
	return nil
}

func (w *Writer) patch(off int64, v uint32) error {
	if _, err := w.seeker.Seek(w.start+off, io.SeekStart); err != nil {
		return fmt.Errorf("wav: finish header: %w", err)
	}
	if _, err := w.w.Write(binary.LittleEndian.AppendUint32(nil, v)); err != nil {
		return fmt.Errorf("wav: finish header: %w", err)
	}
	return nil
}

// Encode returns a complete WAV file of pcm (16-bit little-endian,
// interleaved) with exact sizes in its header, for uploads that must not
// use the streaming convention (some HTTP speech APIs reject it).
func Encode(pcm []byte, sampleRate, channels int) ([]byte, error) {
	if sampleRate < 1 || sampleRate > maxSampleRate {
		return nil, fmt.Errorf("wav: sample rate %d Hz out of range", sampleRate)
	}
	if channels < 1 || channels > maxChannels {
		return nil, fmt.Errorf("wav: %d channels out of range", channels)
	}
	if int64(len(pcm)) >= streamingSize-headerSize {
		return nil, errors.New("wav: over 4 GiB of samples")
	}
	f := Format{SampleRate: sampleRate, Channels: channels, BitsPerSample: 16}
	b := make([]byte, 0, headerSize+len(pcm)+len(pcm)&1)
	b = append(b, header(f, uint32(len(pcm)))...)
	b = append(b, pcm...)
	if len(pcm)&1 == 1 {
		b = append(b, 0)
	}
	return b, nil
}
