package hub

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// Message is one outbound WebSocket message, framed when it is made: header
// and payload in one slice that every queue it is pushed to writes as is.
// It is immutable once made.
type Message struct {
	Binary bool
	Audio  bool // audio may be dropped for a slow listener; control never is
	// Payload is the message's payload, a view into the framed bytes.
	Payload []byte

	wire []byte    // the whole frame
	born time.Time // when it was made: the age of a queue's oldest message
}

// NewControl returns a text message that is never dropped.
func NewControl(payload []byte) *Message { return newMessage(false, false, payload) }

// NewAudio returns a droppable audio message, binary or text (base64 JSON).
func NewAudio(binary bool, payload []byte) *Message { return newMessage(binary, true, payload) }

func newMessage(binary, audio bool, payload []byte) *Message {
	op := opText
	if binary {
		op = opBinary
	}
	wire := make([]byte, headerLen(len(payload)), headerLen(len(payload))+len(payload))
	putHeader(wire, op, len(payload))
	wire = append(wire, payload...)
	return &Message{Binary: binary, Audio: audio, Payload: wire[len(wire)-len(payload):], wire: wire, born: time.Now()}
}

// Wire is the framed message as it goes on the socket.
func (m *Message) Wire() []byte { return m.wire }

// newAudioFrame stamps a chunk with its 16-byte audio header and frames it,
// in one allocation: the chunk is copied once, straight into the frame.
func newAudioFrame(kind byte, stream uint16, seq uint32, ingest time.Time, chunk []byte) *Message {
	n := protocol.AudioHeaderSize + len(chunk)
	hl := headerLen(n)
	wire := make([]byte, hl+n)
	putHeader(wire, opBinary, n)
	protocol.PutAudioHeader(wire[hl:], kind, stream, seq, ingest)
	copy(wire[hl+protocol.AudioHeaderSize:], chunk)
	return &Message{Binary: true, Audio: true, Payload: wire[hl:], wire: wire, born: time.Now()}
}

// newAudioText builds the base64 audioData message of a chunk for the
// listeners of lang who asked for JSON.
func newAudioText(sessionID, format, lang string, kind byte, seq uint32, ingest time.Time, chunk []byte) *Message {
	return NewAudio(false, protocol.Marshal(&protocol.AudioData{
		Header:         protocol.Header{Type: protocol.TypeAudioData, Timestamp: ingest.UnixMilli()},
		SessionID:      sessionID,
		TargetLanguage: lang,
		SequenceNumber: seq,
		Kind:           int(kind),
		AudioData:      base64.StdEncoding.EncodeToString(chunk),
		Format:         format,
	}))
}

// WebSocket opcodes of the frames a server sends (RFC 6455, 5.2).
const (
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// headerLen is the length of an unmasked server frame header for a payload
// of n bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putHeader writes a final, unmasked frame header into dst[:headerLen(n)].
func putHeader(dst []byte, op byte, n int) {
	dst[0] = 0x80 | op
	switch {
	case n < 126:
		dst[1] = byte(n)
	case n <= 0xFFFF:
		dst[1] = 126
		binary.BigEndian.PutUint16(dst[2:4], uint16(n))
	default:
		dst[1] = 127
		binary.BigEndian.PutUint64(dst[2:10], uint64(n))
	}
}

// controlFrame frames a ping, pong or close; control payloads are at most
// 125 bytes.
func controlFrame(op byte, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2, 2+len(payload))
	putHeader(b, op, len(payload))
	return append(b, payload...)
}

// pingFrame is every server ping: no payload, shared.
var pingFrame = controlFrame(opPing, nil)

// closeFrame frames a close with code and reason; the reason is cut to fit
// the 125-byte control payload.
func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return controlFrame(opClose, append(p, reason...))
}
