package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func testReader(in []byte) *frameReader {
	return newFrameReader(bufio.NewReaderSize(bytes.NewReader(in), 512), 1024, func(op ws.OpCode) int {
		if op == ws.OpBinary {
			return 512
		}
		return 256
	})
}

// A continuation whose declared length would overflow the running total
// is over the limit, not a wrap-around to a small number.
func TestFrameReaderHugeContinuation(t *testing.T) {
	in := append(clientFrame(false, 0x1, []byte("a")), 0x80, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4)
	if ev := testReader(in).next(); ev.kind != evFail || ev.code != 1009 {
		t.Fatalf("%+v, want close 1009", ev)
	}
}

func TestFrameReaderReassemblesAndLimits(t *testing.T) {
	var in []byte
	in = append(in, clientFrame(false, 0x1, []byte(`{"a":`))...)
	in = append(in, clientFrame(true, 0x9, []byte("p"))...) // a ping between fragments
	in = append(in, clientFrame(true, 0x0, []byte(`1}`))...)
	in = append(in, clientFrame(true, 0x1, bytes.Repeat([]byte("x"), 300))...) // over the text limit
	in = append(in, clientFrame(true, 0x2, bytes.Repeat([]byte("y"), 300))...) // within the binary one
	op := byte(0x2)                                                            // then continuations: 3 × 400 bytes pass the 1024-byte hard limit
	for i := 0; i < 3; i++ {
		in = append(in, clientFrame(false, op, bytes.Repeat([]byte("z"), 400))...)
		op = 0x0
	}
	r := testReader(in)
	want := []event{
		{kind: evPing, data: []byte("p")},
		{kind: evMessage, op: ws.OpText, data: []byte(`{"a":1}`)},
		{kind: evTooBig, op: ws.OpText},
		{kind: evMessage, op: ws.OpBinary, data: bytes.Repeat([]byte("y"), 300)},
		{kind: evFail, code: 1009, reason: "message too big"},
	}
	for i, w := range want {
		got := r.next()
		if got.kind != w.kind || got.op != w.op || !bytes.Equal(got.data, w.data) || got.code != w.code || got.reason != w.reason {
			t.Fatalf("event %d: %+v, want %+v", i, got, w)
		}
	}
}

// FuzzFrameReader feeds arbitrary bytes to the frame reader: it must never
// panic, never return a message over its limit, end at the hard limit, and
// close only with the codes a server may use for a client's faults.
func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, 0x1, []byte(`{"action":"heartbeat"}`)))
	f.Add(append(clientFrame(false, 0x2, []byte("ab")), clientFrame(true, 0x0, []byte("cd"))...))
	f.Add(clientFrame(true, 0x8, []byte{0x03, 0xe8, 'o', 'k'}))
	f.Add(clientFrame(true, 0x8, []byte{0x13, 0x88}))
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Add([]byte{0xc1, 0x80, 1, 2, 3, 4})
	// A continuation declaring 2^63-1 bytes after a first fragment.
	f.Add(append(clientFrame(false, 0x1, []byte("a")), 0x80, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := testReader(in)
		for i := 0; i < len(in)+1; i++ {
			ev := r.next()
			switch ev.kind {
			case evMessage:
				if limit := r.limit(ev.op); len(ev.data) > limit {
					t.Fatalf("a %d-byte message passed the %d-byte limit", len(ev.data), limit)
				}
				if ev.op != ws.OpText && ev.op != ws.OpBinary {
					t.Fatalf("message with opcode %v", ev.op)
				}
			case evClose:
				if !validCloseCode(ev.code) {
					t.Fatalf("close answered with %d", ev.code)
				}
				return
			case evFail:
				if ev.code != 1002 && ev.code != 1007 && ev.code != 1009 {
					t.Fatalf("failed with %d %q", ev.code, ev.reason)
				}
				return
			case evGone:
				return
			}
			if r.msgLen > r.hard {
				t.Fatalf("read %d bytes of one message past the %d-byte hard limit", r.msgLen, r.hard)
			}
		}
		t.Fatalf("%d bytes gave more events than bytes", len(in))
	})
}
