package hub

import "sync"

// Message is one outbound WebSocket message. It is immutable once queued and
// is shared by every queue it was pushed to, so the transport frames it once
// (Wire) and writes the same bytes to every listener.
type Message struct {
	Binary  bool
	Audio   bool // audio may be dropped for a slow listener; control never is
	Payload []byte

	once sync.Once
	wire []byte
}

// NewControl returns a text message that is never dropped.
func NewControl(payload []byte) *Message { return &Message{Payload: payload} }

// NewAudio returns a droppable audio message, binary or text (base64 JSON).
func NewAudio(binary bool, payload []byte) *Message {
	return &Message{Binary: binary, Audio: true, Payload: payload}
}

// Wire returns the message as framed by frame, computing it at most once for
// all the connections that share the message.
func (m *Message) Wire(frame func(m *Message) []byte) []byte {
	m.once.Do(func() { m.wire = frame(m) })
	return m.wire
}
