package protocol

import (
	"encoding/binary"
	"errors"
	"time"
)

// AudioHeaderSize is the length of the header before every audio chunk the
// server sends (docs/protocol.md, "Audio and binary frames").
const AudioHeaderSize = 16

// AudioVersion is byte 0 of every audio frame.
const AudioVersion = 1

// Audio kinds (byte 1).
const (
	KindSource     = 0
	KindTranslated = 1
)

// AudioHeader is the decoded 16-byte header of a server → listener (or
// processor) audio frame.
type AudioHeader struct {
	Version  byte
	Kind     byte
	StreamID uint16 // bytes 2-3: 0 for listeners, the stream id for processors
	Sequence uint32
	Ingest   time.Time // server ingest time, microsecond precision
}

// PutAudioHeader writes the header into dst[:16].
func PutAudioHeader(dst []byte, kind byte, streamID uint16, seq uint32, ingest time.Time) {
	_ = dst[AudioHeaderSize-1]
	dst[0] = AudioVersion
	dst[1] = kind
	binary.BigEndian.PutUint16(dst[2:4], streamID)
	binary.BigEndian.PutUint32(dst[4:8], seq)
	binary.BigEndian.PutUint64(dst[8:16], uint64(ingest.UnixMicro()))
}

// Errors of ParseAudioFrame.
var (
	ErrShortFrame          = errors.New("audio frame shorter than its 16-byte header")
	ErrShortProcessorFrame = errors.New("translated-audio frame shorter than its 8-byte header")
	ErrBadVersion          = errors.New("audio frame version is not 1")
	ErrBadKind             = errors.New("audio frame kind is neither 0 nor 1")
	ErrEmptyChunk          = errors.New("audio frame carries no audio")
	ErrBadLanguage         = errors.New("language bytes are not a lowercase two-letter code")
)

// ParseAudioFrame decodes a server audio frame into its header and the chunk
// (a sub-slice of b, not a copy).
func ParseAudioFrame(b []byte) (AudioHeader, []byte, error) {
	if len(b) < AudioHeaderSize {
		return AudioHeader{}, nil, ErrShortFrame
	}
	h := AudioHeader{
		Version:  b[0],
		Kind:     b[1],
		StreamID: binary.BigEndian.Uint16(b[2:4]),
		Sequence: binary.BigEndian.Uint32(b[4:8]),
		Ingest:   time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:16]))),
	}
	if h.Version != AudioVersion {
		return h, nil, ErrBadVersion
	}
	if h.Kind > KindTranslated {
		return h, nil, ErrBadKind
	}
	return h, b[AudioHeaderSize:], nil
}

// ProcessorHeaderSize is the header of a processor → server translated frame.
const ProcessorHeaderSize = 8

// ProcessorFrame is a decoded processor → server translated-audio frame.
type ProcessorFrame struct {
	StreamID uint16
	Language string
	Chunk    []byte
}

// PutProcessorHeader writes a processor frame header into dst[:8].
func PutProcessorHeader(dst []byte, streamID uint16, lang string) {
	_ = dst[ProcessorHeaderSize-1]
	dst[0] = AudioVersion
	dst[1] = KindTranslated
	binary.BigEndian.PutUint16(dst[2:4], streamID)
	dst[4], dst[5] = lang[0], lang[1]
	dst[6], dst[7] = 0, 0
}

// ParseProcessorFrame decodes a processor's translated-audio frame.
func ParseProcessorFrame(b []byte) (ProcessorFrame, error) {
	if len(b) < ProcessorHeaderSize {
		return ProcessorFrame{}, ErrShortProcessorFrame
	}
	if b[0] != AudioVersion {
		return ProcessorFrame{}, ErrBadVersion
	}
	if b[1] != KindTranslated {
		return ProcessorFrame{}, ErrBadKind
	}
	l0, l1 := b[4], b[5]
	if l0 < 'a' || l0 > 'z' || l1 < 'a' || l1 > 'z' {
		return ProcessorFrame{}, ErrBadLanguage
	}
	if len(b) == ProcessorHeaderSize {
		return ProcessorFrame{}, ErrEmptyChunk
	}
	return ProcessorFrame{
		StreamID: binary.BigEndian.Uint16(b[2:4]),
		Language: string([]byte{l0, l1}),
		Chunk:    b[ProcessorHeaderSize:],
	}, nil
}
