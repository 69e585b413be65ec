// Package baseline is the bare fan-out server that Pentecost's benchmark
// figures are compared with: the same WebSocket library (gobwas/ws), one
// bounded queue and one writer goroutine per listener, and one write(2) per
// frame per listener, but no sessions, no auth, no protocol, no timers and
// no write coalescing. It is the floor that Pentecost's own logic adds to.
//
// It understands just enough of the connect flow for the load generator to
// drive it unchanged: a connection without sessionId creates a room and is
// told its id ({"type":"sessionCreated","sessionId":...}); one with
// sessionId=ID joins that room ({"type":"sessionJoined"}). Binary frames
// from a room's creator are stamped with the 16-byte audio header of
// docs/protocol.md, "Audio and binary frames", framed once, and queued to every listener.
package baseline

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/pentecost/pentecost/protocol"
)

// Options size the server.
type Options struct {
	// QueueLen is how many frames a listener's queue holds before the oldest
	// is dropped. Default 128, like Pentecost's listener queue.
	QueueLen int
}

// Server is the bare fan-out server.
type Server struct {
	opts    Options
	mu      sync.Mutex
	rooms   map[string]*room
	nextID  atomic.Uint64
	dropped atomic.Uint64
	written atomic.Uint64
	conns   atomic.Int64
	http    *http.Server
}

// New returns a server.
func New(o Options) *Server {
	if o.QueueLen <= 0 {
		o.QueueLen = 128
	}
	return &Server{opts: o, rooms: make(map[string]*room)}
}

// Handler serves /ws and a minimal /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return mux
}

// Serve serves on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	err := s.http.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Close stops accepting; open connections end with the process.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	return s.http.Close()
}

// Dropped is the number of frames dropped from full listener queues.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintf(w, "# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	fmt.Fprintf(w, "# TYPE go_memstats_stack_inuse_bytes gauge\ngo_memstats_stack_inuse_bytes %d\n", ms.StackInuse)
	fmt.Fprintf(w, "# TYPE pentecost_audio_frames_dropped_total counter\npentecost_audio_frames_dropped_total %d\n", s.dropped.Load())
	fmt.Fprintf(w, "# TYPE pentecost_audio_frames_delivered_total counter\npentecost_audio_frames_delivered_total %d\n", s.written.Load())
	fmt.Fprintf(w, "# TYPE baseline_connections gauge\nbaseline_connections %d\n", s.conns.Load())
}

type room struct {
	mu        sync.Mutex
	seq       uint32
	listeners map[*listener]struct{}
}

type listener struct {
	nc   net.Conn
	q    chan []byte
	done chan struct{}
}

func (s *Server) room(id string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[id]
	if r == nil {
		r = &room{listeners: make(map[*listener]struct{})}
		s.rooms[id] = r
	}
	return r
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	s.conns.Add(1)
	defer s.conns.Add(-1)
	defer nc.Close()
	_ = nc.SetDeadline(time.Time{})
	if id := r.URL.Query().Get("sessionId"); id != "" {
		s.listen(nc, rw.Reader, s.room(id))
		return
	}
	id := "baseline-room-" + strconv.FormatUint(s.nextID.Add(1), 10)
	rm := s.room(id)
	if _, err := nc.Write(textFrame(`{"type":"sessionCreated","sessionId":"` + id + `"}`)); err != nil {
		return
	}
	s.speak(rm, rw.Reader)
}

// speak reads the speaker's frames and fans binary ones out.
func (s *Server) speak(rm *room, br *bufio.Reader) {
	var buf []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if h.Length > 1<<20 {
			return
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		p := buf[:h.Length]
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			return
		case ws.OpBinary:
			s.publish(rm, p)
		}
	}
}

// publish stamps and frames a chunk once and queues the same bytes to every
// listener, dropping a listener's oldest frame when its queue is full.
func (s *Server) publish(rm *room, chunk []byte) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	seq := rm.seq
	rm.seq++
	n := protocol.AudioHeaderSize + len(chunk)
	f := appendHeader(make([]byte, 0, 10+n), ws.OpBinary, n)
	hl := len(f)
	f = f[:hl+n]
	a := f[hl:]
	protocol.PutAudioHeader(a, protocol.KindSource, 0, seq, time.Now())
	copy(a[protocol.AudioHeaderSize:], chunk)
	for l := range rm.listeners {
		s.push(l, f)
	}
}

func (s *Server) push(l *listener, f []byte) {
	select {
	case l.q <- f:
		return
	default:
	}
	select {
	case <-l.q:
		s.dropped.Add(1)
	default:
	}
	select {
	case l.q <- f:
	default:
		s.dropped.Add(1)
	}
}

// listen serves a listener: a writer goroutine drains its queue, one
// write(2) per frame; this goroutine reads until the client goes away.
func (s *Server) listen(nc net.Conn, br *bufio.Reader, rm *room) {
	l := &listener{nc: nc, q: make(chan []byte, s.opts.QueueLen), done: make(chan struct{})}
	l.q <- textFrame(`{"type":"sessionJoined"}`)
	go l.write(&s.written)
	rm.mu.Lock()
	rm.listeners[l] = struct{}{}
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		delete(rm.listeners, l)
		rm.mu.Unlock()
		close(l.done)
	}()
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			return
		}
	}
}

func (l *listener) write(written *atomic.Uint64) {
	for {
		select {
		case f := <-l.q:
			if _, err := l.nc.Write(f); err != nil {
				_ = l.nc.Close()
				return
			}
			written.Add(1)
		case <-l.done:
			return
		}
	}
}

func textFrame(s string) []byte {
	return append(appendHeader(nil, ws.OpText, len(s)), s...)
}

func appendHeader(dst []byte, op ws.OpCode, n int) []byte {
	switch {
	case n < 126:
		return append(dst, 0x80|byte(op), byte(n))
	case n <= 0xFFFF:
		return append(dst, 0x80|byte(op), 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|byte(op), 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}
