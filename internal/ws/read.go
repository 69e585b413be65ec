package ws

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// readLoop reads the client's messages until the connection ends, and is
// the first step of an audio chunk's path: frame, checks, Speaker.Audio.
func (c *conn) readLoop() {
	r := newFrameReader(c.br, c.hardLimit(), c.limitFor)
	r.onFrame = c.touch
	for {
		ev := r.next()
		switch ev.kind {
		case evMessage:
			if ev.op == ws.OpText {
				c.handleText(ev.data)
			} else {
				c.handleBinary(ev.data)
			}
			r.release()
		case evTooBig:
			c.tooBig(ev.op)
		case evPing:
			c.q.Pong(ev.data)
		case evClose, evFail:
			c.closeServer(ev.code, ev.reason)
			return
		case evGone:
			return
		}
	}
}

// hardLimit bounds any single message, all its fragments together: above it
// the connection is closed (1009) rather than read to the end. Below it, a
// message over its own limit (limitFor) is read, discarded and answered with
// an error, and the connection lives on.
func (c *conn) hardLimit() int64 {
	n := c.srv.cfg.JSONMaxBytes
	if a := c.srv.cfg.AudioMaxChunk * 4 / 3; a > n {
		n = a
	}
	return int64(n)*4 + 64*1024
}

// limitFor is the largest message of op the connection accepts.
func (c *conn) limitFor(op ws.OpCode) int {
	if op == ws.OpBinary {
		if c.isProcessor() {
			return c.srv.cfg.AudioMaxChunk + protocol.ProcessorHeaderSize
		}
		return c.srv.cfg.AudioMaxChunk
	}
	return c.srv.cfg.JSONMaxBytes
}

func (c *conn) tooBig(op ws.OpCode) {
	if op == ws.OpBinary {
		c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", c.srv.cfg.AudioMaxChunk).
			With("maxBytes", c.srv.cfg.AudioMaxChunk), c.sessionID())
		return
	}
	c.sendError(pentecost.Errorf(pentecost.ErrInvalidMessage, "message is over %d bytes", c.srv.cfg.JSONMaxBytes).
		With("maxBytes", c.srv.cfg.JSONMaxBytes), c.sessionID())
}

func (c *conn) isProcessor() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.processor != nil
}

func (c *conn) touch() { c.lastActive.Store(c.clock.Now().UnixNano()) }

// handleBinary handles a binary message: audio from the speaker, or a
// processor's translated audio.
func (c *conn) handleBinary(b []byte) {
	if c.isClosing() {
		return
	}
	c.mu.Lock()
	sp, pr := c.speaker, c.processor
	c.mu.Unlock()
	if pr != nil {
		c.processorFrame(pr, b)
		return
	}
	if sp == nil {
		c.sendError(unauthorizedAction("binary audio", c.roleName()), c.sessionID())
		return
	}
	c.audio(sp, b)
}

// audio checks a speaker's chunk (size, rate) and fans it out. The chunk
// is the reader's buffer: the room copies it into the framed message.
func (c *conn) audio(sp *sessions.Speaker, chunk []byte) {
	sid := sp.SessionID()
	if len(chunk) == 0 {
		c.sendError(pentecost.Invalid("audioData", "an audio chunk must have at least 1 byte"), sid)
		return
	}
	if max := c.srv.cfg.AudioMaxChunk; len(chunk) > max {
		c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", max).With("maxBytes", max), sid)
		return
	}
	now := c.clock.Now()
	if !c.audioLimit.AllowN(now, 1) {
		c.rateLimited("audio", retryOf(c.audioLimit, now))
		return
	}
	if err := sp.CheckChunk(chunk); err != nil {
		c.sendError(err, sid)
		return
	}
	sp.Audio(chunk)
}

// The events of frameReader.next.
type evKind int

const (
	evMessage evKind = iota // a whole text or binary message in data
	evTooBig                // a message over its limit, read and discarded
	evPing                  // data is the ping's payload (a pong is not reported: it carries nothing)
	evClose                 // the client closed; code and reason are the reply
	evFail                  // a protocol violation; code and reason close the connection
	evGone                  // the socket failed or ended
)

type event struct {
	kind   evKind
	op     ws.OpCode // of a message
	data   []byte    // valid until the next call
	code   int
	reason string
}

// maxFragments bounds the frames of one message, so that an endless run of
// empty continuation frames ends too.
const maxFragments = 4096

// frameReader reads a client's frames and reassembles its messages. It
// enforces the frame rules of RFC 6455 a server must (masking, reserved
// bits, opcodes, control frames, lengths, close codes) and the size limits:
// every fragment of a message counts toward the hard limit, checked before
// the fragment is read.
type frameReader struct {
	br      *bufio.Reader
	hard    int64
	limit   func(ws.OpCode) int
	onFrame func() // activity: any frame, control frames and fragments included

	hdr       [ws.MaxHeaderSize - 2]byte
	control   [125]byte
	msg       []byte
	msgOp     ws.OpCode
	msgLen    int64 // every fragment's payload so far, discarded ones included
	fragments int
	inMsg     bool
	tooBig    bool
}

func newFrameReader(br *bufio.Reader, hard int64, limit func(ws.OpCode) int) *frameReader {
	return &frameReader{br: br, hard: hard, limit: limit}
}

func fail(code int, reason string) event { return event{kind: evFail, code: code, reason: reason} }

// next reads until it has something to report.
func (r *frameReader) next() event {
	for {
		h, err := ws.ReadHeaderBuffer(r.br, r.hdr[:])
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return fail(1002, "bad frame length")
			}
			return event{kind: evGone}
		}
		if r.onFrame != nil {
			r.onFrame()
		}
		switch {
		case h.Rsv != 0:
			return fail(1002, "reserved bits set without an extension")
		case !h.Masked:
			return fail(1002, "client frames must be masked")
		}
		if h.OpCode.IsControl() {
			if ev, ok := r.controlFrame(h); ok {
				return ev
			}
			continue
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			if r.inMsg {
				return fail(1002, "new message inside a fragmented one")
			}
			r.inMsg, r.msgOp, r.msg, r.msgLen, r.fragments, r.tooBig = true, h.OpCode, r.msg[:0], 0, 0, false
		case ws.OpContinuation:
			if !r.inMsg {
				return fail(1002, "continuation without a message")
			}
		default:
			return fail(1002, "unknown opcode")
		}
		r.fragments++
		// Written so that no length a header can declare overflows it.
		if h.Length > r.hard-r.msgLen || r.fragments > maxFragments {
			return fail(1009, "message too big")
		}
		r.msgLen += h.Length
		if r.tooBig || r.msgLen > int64(r.limit(r.msgOp)) {
			r.tooBig = true
			r.msg = r.msg[:0]
			if _, err := io.CopyN(io.Discard, r.br, h.Length); err != nil {
				return event{kind: evGone}
			}
		} else {
			start := len(r.msg)
			r.msg = grow(r.msg, int(h.Length))
			if _, err := io.ReadFull(r.br, r.msg[start:]); err != nil {
				return event{kind: evGone}
			}
			ws.Cipher(r.msg[start:], h.Mask, 0)
		}
		if !h.Fin {
			continue
		}
		r.inMsg = false
		if r.tooBig {
			return event{kind: evTooBig, op: r.msgOp}
		}
		return event{kind: evMessage, op: r.msgOp, data: r.msg}
	}
}

// controlFrame reads a control frame; ok is false for one that needs no
// report.
func (r *frameReader) controlFrame(h ws.Header) (event, bool) {
	switch h.OpCode {
	case ws.OpClose, ws.OpPing, ws.OpPong:
	default:
		return fail(1002, "unknown opcode"), true
	}
	if h.Length > 125 || !h.Fin {
		return fail(1002, "bad control frame"), true
	}
	p := r.control[:h.Length]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return event{kind: evGone}, true
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		return event{kind: evPing, data: p}, true
	case ws.OpPong:
		return event{}, false
	}
	return closeReply(p), true
}

// closeReply answers a client's close frame: its own code echoed, 1000 for
// a close without one, 1002 for a code that may not be sent (RFC 6455,
// 7.4) or a 1-byte payload, 1007 for a reason that is not UTF-8.
func closeReply(p []byte) event {
	switch {
	case len(p) == 0:
		return event{kind: evClose, code: 1000}
	case len(p) == 1:
		return fail(1002, "bad close frame")
	}
	code := int(p[0])<<8 | int(p[1])
	if !validCloseCode(code) {
		return fail(1002, "invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return fail(1007, "close reason is not UTF-8")
	}
	return event{kind: evClose, code: code}
}

// validCloseCode reports whether a peer may send code: the codes RFC 6455
// and the IANA registry define (1004, 1005, 1006 and 1015 are never sent),
// and the 3000-4999 range for libraries and applications.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// release drops a large message buffer once its message is handled: a
// connection does not keep one for its life.
func (r *frameReader) release() {
	if cap(r.msg) > 256*1024 {
		r.msg = nil
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*(len(b)+n))
	copy(nb, b)
	return nb
}
