package protocoltest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/testserver"
)

// The frame rules of docs/protocol.md, "Limits and rate limits", checked with
// frames written byte by byte over a real socket: the kind of input no
// WebSocket library will produce.

// rawConn is a WebSocket client that writes whatever frames it is told to.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial upgrades a plain TCP connection to n's /ws?query by hand.
func rawDial(t *testing.T, n *testserver.Node, query string, hdr http.Header) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET /ws?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", query, nc.RemoteAddr(), base64.StdEncoding.EncodeToString(key))
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(testserver.Wait))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	return &rawConn{t: t, nc: nc, br: br}
}

// frameOpts shape one client frame; the zero value is a final, masked frame.
type frameOpts struct {
	more   bool   // FIN clear
	rsv    byte   // RSV1-3, as bits 0x40, 0x20, 0x10
	unmask bool   // send without a mask
	length []byte // the length field as sent (7-bit code and extension), instead of the payload's
}

func encodeFrame(op byte, payload []byte, o frameOpts) []byte {
	b0 := op | o.rsv
	if !o.more {
		b0 |= 0x80
	}
	var b []byte
	mask := byte(0x80)
	if o.unmask {
		mask = 0
	}
	switch n := len(payload); {
	case o.length != nil:
		b = append([]byte{b0, mask | o.length[0]}, o.length[1:]...)
	case n < 126:
		b = []byte{b0, mask | byte(n)}
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16([]byte{b0, mask | 126}, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, mask | 127}, uint64(n))
	}
	if o.unmask {
		return append(b, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// send writes one frame; the server may already have closed.
func (c *rawConn) send(op byte, payload []byte, o frameOpts) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(testserver.Wait))
	_, err := c.nc.Write(encodeFrame(op, payload, o))
	return err
}

// next reads one server frame.
func (c *rawConn) next() (op byte, payload []byte, err error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(testserver.Wait))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		c.t.Fatal("the server sent a masked frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(c.br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(c.br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	if err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return h[0] & 0x0f, payload, err
}

// closed reads until the server's close frame and returns its code and
// reason; after it the server must end the TCP connection.
func (c *rawConn) closed() (int, string) {
	c.t.Helper()
	for {
		op, p, err := c.next()
		if err != nil {
			c.t.Fatalf("the connection ended without a close frame: %v", err)
		}
		if op != 0x8 {
			continue
		}
		if len(p) < 2 {
			c.t.Fatalf("close frame without a code: % x", p)
		}
		// Then the server hangs up (a reset is fine: the server stops
		// reading at a protocol error); it must not leave the socket open.
		_, err = io.Copy(io.Discard, c.br)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("the server kept the connection open after its close frame")
		}
		return int(binary.BigEndian.Uint16(p)), string(p[2:])
	}
}

func (c *rawConn) wantClose(code int, reason string) {
	c.t.Helper()
	if got, why := c.closed(); got != code || (reason != "" && why != reason) {
		c.t.Fatalf("closed with %d %q, want %d %q", got, why, code, reason)
	}
}

// heartbeat proves the connection is served: a heartbeat is acked.
func (c *rawConn) heartbeat() {
	c.t.Helper()
	if err := c.send(0x1, []byte(`{"action":"heartbeat"}`), frameOpts{}); err != nil {
		c.t.Fatal(err)
	}
	for {
		op, p, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for heartbeatAck: %v", err)
		}
		if op == 0x1 && bytes.Contains(p, []byte(`"heartbeatAck"`)) {
			return
		}
	}
}

// A message sent in fragments counts every fragment toward the hard limit:
// the connection is closed 1009 as soon as the total passes it, not read to
// the end (10 MB here), and not read forever.
func TestFragmentedMessageCountsTowardTheLimit(t *testing.T) {
	n := start(t, loose)
	hard := 4*int(max(float64(n.Config.JSONMaxBytes), float64(n.Config.AudioMaxChunkBytes)*4/3)) + 64*1024
	for _, c := range []struct {
		name     string
		op       byte
		fragment int
	}{{"text", 0x1, 4096}, {"binary", 0x2, 4096}} {
		t.Run(c.name, func(t *testing.T) {
			rc := rawDial(t, n, "", nil)
			rc.heartbeat()
			frag := bytes.Repeat([]byte("a"), c.fragment)
			sent := 0
			errc := make(chan error, 1)
			go func() {
				op := c.op
				for sent < 10<<20 {
					if err := rc.send(op, frag, frameOpts{more: true}); err != nil {
						errc <- err
						return
					}
					op = 0x0
					sent += len(frag)
				}
				errc <- nil
			}()
			rc.wantClose(1009, "message too big")
			if err := <-errc; err == nil {
				t.Fatalf("all of a 10 MB message was sent before the close (hard limit %d)", hard)
			}
		})
	}
	t.Run("endless empty fragments", func(t *testing.T) {
		rc := rawDial(t, n, "", nil)
		if err := rc.send(0x1, []byte("{"), frameOpts{more: true}); err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if rc.send(0x0, nil, frameOpts{more: true}) != nil {
					return
				}
			}
		}()
		rc.wantClose(1009, "message too big")
	})
}

// Reserved bits need an extension, and none is ever negotiated.
func TestReservedBitsClose1002(t *testing.T) {
	n := start(t, loose)
	for _, rsv := range []byte{0x40, 0x20, 0x10} {
		rc := rawDial(t, n, "", nil)
		rc.heartbeat()
		if err := rc.send(0x1, []byte(`{"action":"heartbeat"}`), frameOpts{rsv: rsv}); err != nil {
			t.Fatal(err)
		}
		rc.wantClose(1002, "reserved bits set without an extension")
	}
}

// Malformed frames close 1002 (a protocol error), never 1000.
func TestMalformedFramesClose1002(t *testing.T) {
	n := start(t, loose)
	for _, c := range []struct {
		name   string
		op     byte
		o      frameOpts
		reason string
	}{
		{"length over 2^63", 0x2, frameOpts{length: []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 1}}, "bad frame length"},
		{"reserved control opcode", 0xB, frameOpts{}, "unknown opcode"},
		{"reserved data opcode", 0x3, frameOpts{}, "unknown opcode"},
		{"unmasked", 0x1, frameOpts{unmask: true}, "client frames must be masked"},
		{"fragmented ping", 0x9, frameOpts{more: true}, "bad control frame"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := rawDial(t, n, "", nil)
			rc.heartbeat()
			if err := rc.send(c.op, nil, c.o); err != nil {
				t.Fatal(err)
			}
			rc.wantClose(1002, c.reason)
		})
	}
}

// The server echoes a client's close code only when it is one a peer may
// send; any other is a protocol error.
func TestClientCloseCodes(t *testing.T) {
	n := start(t, loose)
	code := func(c int, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(c)), reason...)
	}
	for _, c := range []struct {
		payload []byte
		want    int
	}{
		{nil, 1000},
		{code(1000, "bye"), 1000}, {code(1001, ""), 1001}, {code(1003, ""), 1003},
		{code(1007, ""), 1007}, {code(1011, ""), 1011}, {code(1014, ""), 1014},
		{code(3000, ""), 3000}, {code(4999, ""), 4999},
		{code(999, ""), 1002}, {code(1004, ""), 1002}, {code(1005, ""), 1002}, {code(1006, ""), 1002},
		{code(1015, ""), 1002}, {code(1016, ""), 1002}, {code(2999, ""), 1002}, {code(5000, ""), 1002},
		{code(65535, ""), 1002}, {[]byte{0x03}, 1002},
		{code(1000, "\xff\xfe"), 1007},
	} {
		t.Run(fmt.Sprintf("% x", c.payload), func(t *testing.T) {
			rc := rawDial(t, n, "", nil)
			rc.heartbeat()
			if err := rc.send(0x8, c.payload, frameOpts{}); err != nil {
				t.Fatal(err)
			}
			if got, why := rc.closed(); got != c.want {
				t.Fatalf("client close % x answered %d %q, want %d", c.payload, got, why, c.want)
			}
		})
	}
}
