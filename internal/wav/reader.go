package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors of NewReader, wrapped with detail.
var (
	ErrNotWAV      = errors.New("not a RIFF/WAVE file")
	ErrUnsupported = errors.New("unsupported WAV format")
	ErrTruncated   = errors.New("truncated WAV header")
	ErrMalformed   = errors.New("malformed WAV file")
)

// Format tags of the fmt chunk.
const (
	formatPCM        = 0x0001
	formatExtensible = 0xFFFE
)

// Limits that keep a hostile header from making us allocate or loop: no
// real fmt chunk is bigger than 40 bytes.
const (
	maxFmtChunk   = 1 << 10
	maxChannels   = 64
	maxSampleRate = 1 << 20
)

// streamingSize is the data size a writer that cannot seek puts in the
// header; it means "until the end of the stream".
const streamingSize = 0xFFFFFFFF

// Reader is a WAV file whose header has been parsed; reading it yields the
// raw PCM bytes of the data chunk (little-endian, interleaved).
type Reader struct {
	Format Format
	// DataSize is the size the data chunk declares, or -1 when the header
	// uses the streaming convention (0xFFFFFFFF) and the data runs to the
	// end of the input.
	DataSize int64

	data io.Reader
}

// NewReader parses the RIFF header and the chunks up to the data chunk,
// skipping chunks it does not know (LIST, fact, cue ...). The fmt chunk must
// come before the data chunk, as the format requires, so the input is read
// strictly forward and may be a pipe.
//
// A data chunk shorter than it declares is not an error: the Reader ends
// where the input ends, because recordings cut short are common and still
// useful.
func NewReader(r io.Reader) (*Reader, error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d-byte RIFF header incomplete", ErrTruncated, len(riff))
		}
		return nil, fmt.Errorf("wav: read RIFF header: %w", err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: missing RIFF/WAVE magic", ErrNotWAV)
	}

	var f *Format
	for {
		id, size, err := readChunkHeader(r)
		if err != nil {
			return nil, err
		}
		switch id {
		case "fmt ":
			if f != nil {
				return nil, fmt.Errorf("%w: second fmt chunk", ErrMalformed)
			}
			if f, err = readFmt(r, size); err != nil {
				return nil, err
			}
		case "data":
			if f == nil {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformed)
			}
			wr := &Reader{Format: *f, DataSize: int64(size)}
			if size == streamingSize {
				wr.DataSize = -1
				wr.data = r
			} else {
				wr.data = io.LimitReader(r, int64(size))
			}
			return wr, nil
		default:
			if err := skip(r, int64(size)+int64(size&1)); err != nil {
				return nil, fmt.Errorf("%w: chunk %q cut short", ErrTruncated, id)
			}
		}
	}
}

// Read reads PCM bytes of the data chunk.
func (r *Reader) Read(p []byte) (int, error) { return r.data.Read(p) }

func readChunkHeader(r io.Reader) (string, uint32, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return "", 0, fmt.Errorf("%w: no data chunk", ErrMalformed)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "", 0, fmt.Errorf("%w: chunk header cut short", ErrTruncated)
		}
		return "", 0, fmt.Errorf("wav: read chunk header: %w", err)
	}
	return string(h[0:4]), binary.LittleEndian.Uint32(h[4:8]), nil
}

func readFmt(r io.Reader, size uint32) (*Format, error) {
	if size < 16 {
		return nil, fmt.Errorf("%w: fmt chunk of %d bytes, want at least 16", ErrMalformed, size)
	}
	if size > maxFmtChunk {
		return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformed, size)
	}
	b := make([]byte, size+size&1)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: fmt chunk cut short", ErrTruncated)
	}
	le := binary.LittleEndian
	tag := le.Uint16(b[0:2])
	f := &Format{
		Channels:      int(le.Uint16(b[2:4])),
		SampleRate:    int(le.Uint32(b[4:8])),
		BitsPerSample: int(le.Uint16(b[14:16])),
	}
	blockAlign := int(le.Uint16(b[12:14]))
	if tag == formatExtensible {
		// cbSize(2) validBits(2) channelMask(4) then the subformat GUID,
		// whose first two bytes are the plain format tag.
		if size < 40 {
			return nil, fmt.Errorf("%w: extensible fmt chunk of %d bytes, want 40", ErrMalformed, size)
		}
		tag = le.Uint16(b[24:26])
		if !bytes.Equal(b[26:40], pcmGUIDTail) {
			tag = 0 // some other GUID family: not PCM
		}
	}
	if tag != formatPCM {
		return nil, fmt.Errorf("%w: format tag 0x%04x is not integer PCM", ErrUnsupported, tag)
	}
	if f.BitsPerSample != 16 {
		return nil, fmt.Errorf("%w: %d bits per sample, only 16 is supported", ErrUnsupported, f.BitsPerSample)
	}
	if f.Channels < 1 || f.Channels > maxChannels {
		return nil, fmt.Errorf("%w: %d channels", ErrUnsupported, f.Channels)
	}
	if f.SampleRate < 1 || f.SampleRate > maxSampleRate {
		return nil, fmt.Errorf("%w: sample rate %d Hz", ErrUnsupported, f.SampleRate)
	}
	if blockAlign != f.FrameSize() {
		return nil, fmt.Errorf("%w: block align %d, want %d for %d channels", ErrMalformed, blockAlign, f.FrameSize(), f.Channels)
	}
	return f, nil
}

// pcmGUIDTail is KSDATAFORMAT_SUBTYPE_PCM after its first two bytes.
var pcmGUIDTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

func skip(r io.Reader, n int64) error {
	if m, _ := io.CopyN(io.Discard, r, n); m < n {
		return io.ErrUnexpectedEOF
	}
	return nil
}
