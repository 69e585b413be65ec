package client

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// Event is one frame from the server: a JSON message (Type, JSON, Raw) or a
// binary audio frame (Audio, Raw).
type Event struct {
	Type  string         // the message's "type"; empty for binary frames
	JSON  map[string]any // the decoded message; numbers are float64
	Raw   []byte         // the frame as received
	Audio *AudioFrame    // set for binary audio frames only
}

// AudioFrame is one chunk of audio with its header.
type AudioFrame struct {
	Header protocol.AudioHeader
	Chunk  []byte
}

// IsAudio reports whether the event carries audio in either encoding: a
// binary frame or an audioData message. AudioFromJSON decodes both.
func (e Event) IsAudio() bool { return e.Audio != nil || e.Type == protocol.TypeAudioData }

// AudioFromJSON returns the audio of the event whichever encoding carried
// it, so callers treat binary and base64 listeners alike. For an audioData
// message the header is rebuilt from its fields; Ingest is then the
// message's timestamp (millisecond precision), the nearest thing it carries.
func (e Event) AudioFromJSON() (*AudioFrame, error) {
	if e.Audio != nil {
		return e.Audio, nil
	}
	if e.Type != protocol.TypeAudioData {
		return nil, fmt.Errorf("event %q carries no audio", e.Type)
	}
	chunk, err := base64.StdEncoding.DecodeString(e.String("audioData"))
	if err != nil {
		return nil, fmt.Errorf("audioData: %w", err)
	}
	return &AudioFrame{
		Header: protocol.AudioHeader{
			Version:  protocol.AudioVersion,
			Kind:     byte(e.Int("kind")),
			Sequence: uint32(e.Int("sequenceNumber")),
			Ingest:   time.UnixMilli(e.Int("timestamp")),
		},
		Chunk: chunk,
	}, nil
}

// Has reports whether the message has the key.
func (e Event) Has(key string) bool { _, ok := e.JSON[key]; return ok }

// String returns a string field, or "" when absent or not a string.
func (e Event) String(key string) string { s, _ := e.JSON[key].(string); return s }

// Int returns a numeric field truncated to an integer, or 0.
func (e Event) Int(key string) int64 { return int64(e.Float(key)) }

// Float returns a numeric field, or 0.
func (e Event) Float(key string) float64 {
	switch v := e.JSON[key].(type) {
	case float64:
		return v
	case json.Number:
		f, _ := v.Float64()
		return f
	}
	return 0
}

// Bool returns a boolean field, or false.
func (e Event) Bool(key string) bool { b, _ := e.JSON[key].(bool); return b }

// Map returns an object field, or nil.
func (e Event) Map(key string) map[string]any { m, _ := e.JSON[key].(map[string]any); return m }

// Decode unmarshals a JSON message into v, e.g. a protocol.SessionStatus.
func (e Event) Decode(v any) error {
	if e.Audio != nil {
		return errors.New("binary frame is not JSON")
	}
	return json.Unmarshal(e.Raw, v)
}

// Errors decoding binary frames. The header is decoded here rather than with
// protocol.ParseAudioFrame so the server's tests check it independently.
var (
	errShortFrame = errors.New("binary frame shorter than the 16-byte audio header")
	errVersion    = errors.New("audio frame version is not 1")
	errKind       = errors.New("audio frame kind is neither 0 nor 1")
)

func decodeText(b []byte) (Event, error) {
	ev := Event{Raw: b}
	if err := json.Unmarshal(b, &ev.JSON); err != nil {
		return ev, &FrameError{Raw: b, Err: fmt.Errorf("text frame is not a JSON object: %w", err)}
	}
	t, ok := ev.JSON["type"].(string)
	if !ok {
		return ev, &FrameError{Raw: b, Err: errors.New(`JSON message has no string "type"`)}
	}
	ev.Type = t
	return ev, nil
}

func decodeBinary(b []byte) (Event, error) {
	ev := Event{Raw: b}
	if len(b) < 16 {
		return ev, &FrameError{Raw: b, Err: errShortFrame}
	}
	h := protocol.AudioHeader{
		Version:  b[0],
		Kind:     b[1],
		StreamID: binary.BigEndian.Uint16(b[2:4]),
		Sequence: binary.BigEndian.Uint32(b[4:8]),
		Ingest:   time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:16]))),
	}
	if h.Version != 1 {
		return ev, &FrameError{Raw: b, Err: errVersion}
	}
	if h.Kind > 1 {
		return ev, &FrameError{Raw: b, Err: errKind}
	}
	ev.Audio = &AudioFrame{Header: h, Chunk: b[16:]}
	return ev, nil
}
