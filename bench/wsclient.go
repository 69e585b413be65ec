package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/pentecost/pentecost/protocol"
)

// The load client is deliberately lean, so the generator is not what limits
// a run: a listener is one goroutine that reads into one reused buffer and
// parses the frames in place (no per-frame allocation, one clock read per
// read(2)), and a speaker writes frames framed and masked once at start-up.

// epoch anchors the monotonic timestamps that speakers embed in chunks.
var epoch = time.Now()

// mono is the time since epoch, from the monotonic clock.
func mono() int64 { return int64(time.Since(epoch)) }

// maxFrame bounds the frames a listener accepts.
const maxFrame = 16 << 20

// dialer opens WebSocket connections. rcvBuf > 0 shrinks the socket's
// receive buffer before connecting (for stalled listeners, so they back up
// into the server quickly).
func dial(ctx context.Context, url string, rcvBuf int) (net.Conn, []byte, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	if rcvBuf > 0 {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		d.NetDial = nd.DialContext
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	var pending []byte
	if br != nil {
		if n := br.Buffered(); n > 0 {
			p, _ := br.Peek(n)
			pending = append([]byte(nil), p...)
		}
		ws.PutReader(br)
	}
	return nc, pending, nil
}

// window is the measurement window, in mono() nanoseconds, fixed before the
// first chunk is sent so speakers and listeners classify chunks alike.
type window struct {
	start, end int64
}

func (w window) in(t int64) bool { return t >= w.start && t < w.end }

// listener is one listening connection.
type listener struct {
	idx     int
	url     string
	codec   string // asked for
	sess    *speaker
	nc      net.Conn
	pending []byte
	hist    *Histogram // latency of in-window chunks
	stalled bool       // joins, then never reads again

	dialStart time.Time
	joinedAt  atomic.Int64  // mono() when sessionJoined arrived; 0 before
	joined    chan struct{} // closed once the join is decided
	jmu       sync.Mutex
	joinState int // 0 pending, 1 joined, 2 failed
	joinLat   time.Duration
	joinErr   string

	// Updated by the reader goroutine only; atomics so progress can read them.
	inWindow    atomic.Int64 // chunks sent inside the window and received
	total       atomic.Int64 // every audio frame received
	gaps        atomic.Int64 // sequence numbers skipped inside the window
	unknown     atomic.Int64 // audio frames whose sequence number the speaker never sent
	windowBytes atomic.Int64 // the window's bytes: frames of chunks due inside it, other frames read inside it

	closeCode  int
	otherCodec atomic.Bool   // sessionJoined named another codec than asked (the server does not convert)
	done       chan struct{} // closed when the reader has returned
	stallCode  string        // a stalled listener: how the server ended it, read afterwards
}

// succeed records the join; it reports false if the join was already
// decided (a timeout got there first).
func (l *listener) succeed(now int64) bool {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	if l.joinState != 0 {
		return false
	}
	l.joinState, l.joinLat = 1, time.Since(l.dialStart)
	l.joinedAt.Store(now)
	close(l.joined)
	return true
}

// fail records a failed join, unless the join was already decided.
func (l *listener) fail(why string) {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	if l.joinState != 0 {
		return
	}
	l.joinState, l.joinErr = 2, why
	close(l.joined)
}

func (l *listener) pendingJoin() bool {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	return l.joinState == 0
}

func (l *listener) joinLatency() (time.Duration, bool) {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	return l.joinLat, l.joinState == 1
}

func (l *listener) failure() string {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	if l.joinState == 2 {
		return l.joinErr
	}
	return ""
}

// read runs until the connection ends.
func (l *listener) read() {
	defer close(l.done)
	defer l.fail("connection ended before sessionJoined")
	buf := make([]byte, 8*1024)
	w := copy(buf, l.pending)
	if w < len(l.pending) { // a huge first burst: keep it all
		buf = append([]byte(nil), l.pending...)
		w = len(buf)
	}
	l.pending = nil
	var (
		lastSeq uint32
		haveSeq bool
		pong    []byte
	)
	first := w > 0
	for {
		n := w
		if !first {
			var err error
			n, err = l.nc.Read(buf[w:])
			if n == 0 && err != nil {
				return
			}
			w += n
		}
		first = false
		now := mono()
		log := l.sess.log.Load()
		r := 0
		for {
			p, op, n, ok := parseFrame(buf[r:w])
			if !ok {
				if n > maxFrame {
					return // no server of ours sends that; don't allocate it
				}
				if n > len(buf) { // the next frame does not fit: grow
					nb := make([]byte, n+4096)
					copy(nb, buf[r:w])
					buf, w, r = nb, w-r, 0
				}
				break
			}
			r += n
			// The window's bytes: an audio frame's when its chunk was due
			// inside the window (as for the delivered frames, so a backlog
			// read late does not count twice), any other frame's when read
			// inside it.
			frameLen := int64(n)
			if op != ws.OpBinary && log != nil && log.win.in(now) {
				l.windowBytes.Add(frameLen)
			}
			switch op {
			case ws.OpBinary:
				h, _, err := protocol.ParseAudioFrame(p)
				if err != nil {
					continue
				}
				l.total.Add(1)
				seq := h.Sequence
				sent, ok := int64(0), false
				if log != nil {
					sent, ok = log.sentAt(seq)
				}
				if !ok {
					l.unknown.Add(1)
					continue
				}
				if log.win.in(log.due(seq)) {
					l.inWindow.Add(1)
					l.windowBytes.Add(frameLen)
					l.hist.RecordMicros(uint64(max(now-sent, 0)) / 1000)
					if haveSeq && seq-lastSeq > 1 && seq-lastSeq < 1<<31 {
						l.gaps.Add(int64(seq - lastSeq - 1))
					}
				}
				lastSeq, haveSeq = seq, true
			case ws.OpText:
				if l.joinedAt.Load() == 0 && l.pendingJoin() {
					switch {
					case bytes.Contains(p, []byte(`"sessionJoined"`)):
						if bytes.Contains(p, []byte(`"codec":`)) && !bytes.Contains(p, []byte(`"codec":"`+l.codec+`"`)) {
							l.otherCodec.Store(true)
						}
						if l.succeed(now) && l.stalled {
							return // never read again
						}
					case bytes.Contains(p, []byte(`"type":"error"`)):
						l.fail(errorCode(p))
					}
				}
			case ws.OpPing:
				pong = appendClientFrame(pong[:0], ws.OpPong, p)
				_ = l.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := l.nc.Write(pong); err != nil {
					return
				}
			case ws.OpClose:
				if len(p) >= 2 {
					l.closeCode = int(binary.BigEndian.Uint16(p))
				}
				l.fail(fmt.Sprintf("closed %d", l.closeCode))
				return
			}
		}
		if r > 0 {
			w = copy(buf, buf[r:w])
		}
	}
}

func errorCode(p []byte) string {
	var m struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(p, &m) != nil || m.Code == "" {
		return "error"
	}
	return m.Code
}

// parseFrame reads one server frame from b. When b holds a whole frame it
// returns its payload (a sub-slice of b), op code, length and true; else
// false and, when the header is complete, the frame's full length.
func parseFrame(b []byte) (payload []byte, op ws.OpCode, n int, ok bool) {
	if len(b) < 2 {
		return nil, 0, 0, false
	}
	op = ws.OpCode(b[0] & 0x0f)
	masked := b[1]&0x80 != 0
	ln := uint64(b[1] & 0x7f)
	hl := 2
	switch ln {
	case 126:
		if len(b) < 4 {
			return nil, 0, 0, false
		}
		ln, hl = uint64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return nil, 0, 0, false
		}
		ln, hl = binary.BigEndian.Uint64(b[2:10]), 10
	}
	var mask [4]byte
	if masked {
		if len(b) < hl+4 {
			return nil, 0, 0, false
		}
		copy(mask[:], b[hl:hl+4])
		hl += 4
	}
	if ln > 1<<30 {
		return nil, 0, 1 << 31, false
	}
	n = hl + int(ln)
	if len(b) < n {
		return nil, 0, n, false
	}
	payload = b[hl:n]
	if masked {
		ws.Cipher(payload, mask, 0)
	}
	return payload, op, n, true
}

// appendClientFrame appends p as one masked client frame.
func appendClientFrame(dst []byte, op ws.OpCode, p []byte) []byte {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	dst = appendMaskedHeader(dst, op, len(p), mask)
	start := len(dst)
	dst = append(dst, p...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// speaker is one speaking connection, and so one session.
type speaker struct {
	idx       int
	nc        net.Conn
	sessionID string
	wmu       sync.Mutex
	// log is set before the first chunk; listeners read it concurrently.
	log atomic.Pointer[sendLog]

	sentWindow atomic.Int64 // chunks sent inside the window
	sentTotal  atomic.Int64
	late       atomic.Int64 // chunks sent more than one interval late
	writeErr   atomic.Value // error
	done       chan struct{}
}

// connectSpeaker creates a session and returns its speaker.
func connectSpeaker(ctx context.Context, url string, idx int) (*speaker, error) {
	nc, pending, err := dial(ctx, url, 0)
	if err != nil {
		return nil, err
	}
	sp := &speaker{idx: idx, nc: nc, done: make(chan struct{})}
	_ = nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), nc), 16*1024)
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("speaker %d: waiting for sessionCreated: %w", idx, err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			nc.Close()
			return nil, err
		}
		if h.OpCode == ws.OpClose {
			nc.Close()
			code, reason := ws.ParseCloseFrameData(p)
			return nil, fmt.Errorf("speaker %d: server closed %d %s", idx, code, reason)
		}
		if h.OpCode != ws.OpText {
			continue
		}
		var m struct {
			Type      string `json:"type"`
			SessionID string `json:"sessionId"`
			Code      string `json:"code"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(p, &m) != nil {
			continue
		}
		switch m.Type {
		case "sessionCreated":
			sp.sessionID = m.SessionID
			_ = nc.SetReadDeadline(time.Time{})
			go sp.drain(br)
			return sp, nil
		case "error":
			nc.Close()
			return nil, fmt.Errorf("speaker %d: %s: %s", idx, m.Code, m.Message)
		}
	}
}

// drain reads and discards what the server sends the speaker (status
// pushes), answering pings.
func (sp *speaker) drain(br *bufio.Reader) {
	defer close(sp.done)
	var pong []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if h.OpCode == ws.OpPing && h.Length <= 125 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return
			}
			pong = appendClientFrame(pong[:0], ws.OpPong, p)
			sp.wmu.Lock()
			_, err = sp.nc.Write(pong)
			sp.wmu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			return
		}
	}
}

// stream sends the chunks, looped, one every interval from start until end
// (mono ns), keeping to an absolute schedule: a late chunk goes out at
// once, so the offered rate holds even when the scheduler is slow. It
// records each send in a new sendLog first, so a listener always finds
// the send time of what it receives.
func (sp *speaker) stream(ctx context.Context, start, end int64, interval time.Duration, chunks [][]byte, win window) {
	mask := [4]byte{}
	_, _ = rand.Read(mask[:])
	frames := make([][]byte, len(chunks))
	for i, c := range chunks {
		f := appendMaskedHeader(nil, ws.OpBinary, len(c), mask)
		hl := len(f)
		f = append(f, c...)
		ws.Cipher(f[hl:], mask, 0)
		frames[i] = f
	}
	log := newSendLog(start, int64(interval), win)
	sp.log.Store(log)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for k := int64(0); ; k++ {
		due := start + k*int64(interval)
		if due >= end || int(k) >= len(log.sent) {
			return
		}
		if wait := due - mono(); wait > 0 {
			timer.Reset(time.Duration(wait))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		} else if -wait > int64(interval) {
			sp.late.Add(1)
		}
		if ctx.Err() != nil {
			return
		}
		log.sent[k].Store(mono())
		inWin := win.in(due)
		sp.wmu.Lock()
		_ = sp.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := sp.nc.Write(frames[k%int64(len(frames))])
		sp.wmu.Unlock()
		if err != nil {
			sp.writeErr.Store(err)
			return
		}
		sp.sentTotal.Add(1)
		if inWin {
			sp.sentWindow.Add(1)
		}
	}
}

// appendMaskedHeader appends the header of a masked client frame of n
// bytes.
func appendMaskedHeader(dst []byte, op ws.OpCode, n int, mask [4]byte) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, mask[:]...)
}

// readToClose reads a connection's backlog for at most d and reports how it
// ended: "4008" (or another close code) when a close frame arrived, "closed"
// when the connection ended without one, "open" when it was still open.
func readToClose(nc net.Conn, d time.Duration) string {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64*1024)
	w := 0
	for {
		n, err := nc.Read(buf[w:])
		w += n
		r := 0
		for {
			p, op, fl, ok := parseFrame(buf[r:w])
			if !ok {
				if fl > len(buf) {
					if fl > maxFrame {
						return "closed"
					}
					nb := make([]byte, fl)
					copy(nb, buf[r:w])
					buf, w, r = nb, w-r, 0
				}
				break
			}
			r += fl
			if op == ws.OpClose {
				if len(p) >= 2 {
					return fmt.Sprint(binary.BigEndian.Uint16(p))
				}
				return "1005"
			}
		}
		w = copy(buf, buf[r:w])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return "open"
			}
			return "closed"
		}
	}
}
