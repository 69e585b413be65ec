package ws

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/pentecost/pentecost/hub"
)

// BenchmarkSocketWrite is the lever of the fan-out (docs/architecture.md,
// "Why gobwas/ws"): the cost per delivered frame of one write(2) per frame against
// one writev(2) per batch of queued frames, on a real loopback TCP socket.
// ns/frame is what to compare.
func BenchmarkSocketWrite(b *testing.B) {
	f := hub.NewAudio(true, make([]byte, 16+640)).Wire()
	for _, batch := range []int{1, 4, 16} {
		for _, mode := range []string{"write-per-frame", "writev"} {
			if batch == 1 && mode == "writev" {
				continue
			}
			b.Run(fmt.Sprintf("%s/batch=%d", mode, batch), func(b *testing.B) {
				c, done := loopbackPair(b)
				defer done()
				bufs := make(net.Buffers, 0, batch)
				// WriteTo consumes its receiver; writing through a copy
				// held in a heap object keeps bufs' capacity and costs no
				// allocation per write.
				h := &struct{ v net.Buffers }{}
				b.ReportAllocs()
				b.SetBytes(int64(len(f) * batch))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if mode == "writev" {
						bufs = bufs[:0]
						for j := 0; j < batch; j++ {
							bufs = append(bufs, f)
						}
						h.v = bufs
						if _, err := h.v.WriteTo(c); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for j := 0; j < batch; j++ {
						if _, err := c.Write(f); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/frame")
			})
		}
	}
}

// BenchmarkWriter runs a connection's real writer (its hub.Queue writing
// through the conn's hub.Link) against a loopback socket: frames are queued batch at a time and the benchmark waits
// until the peer has read them, so batch=1 is a listener that keeps up (one
// frame per wake-up and write) and batch=16 one whose queue backed up. The
// figures to watch are ns/frame and allocs/op per frame: the writer must not
// allocate per write.
func BenchmarkWriter(b *testing.B) {
	f := hub.NewAudio(true, make([]byte, 16+640))
	wire := int64(len(f.Wire()))
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			w, r := tcpPair(b)
			defer w.Close()
			defer r.Close()
			s := New(DefaultConfig(), Options{})
			c := &conn{srv: s, nc: w, plainTCP: true, q: hub.NewQueue(hub.QueueOptions{MaxAudio: 1 << 16})}
			c.q.Attach(c)
			defer c.q.Stop()
			var got atomic.Int64
			progress := make(chan struct{}, 1)
			go func() {
				buf := make([]byte, 64*1024)
				for {
					n, err := r.Read(buf)
					if err != nil {
						return
					}
					got.Add(int64(n))
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			var want int64
			for i := 0; i < b.N; i++ {
				for j := 0; j < batch; j++ {
					c.q.Push(f)
				}
				want += wire * int64(batch)
				for got.Load() < want {
					<-progress
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/frame")
		})
	}
}

func tcpPair(b *testing.B) (w, r net.Conn) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	w, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r = <-accepted
	if r == nil {
		b.Fatal("accept failed")
	}
	return w, r
}

// loopbackPair returns the writing end of a loopback TCP connection whose
// other end is drained by a goroutine.
func loopbackPair(b *testing.B) (net.Conn, func()) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	w, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r := <-accepted
	l.Close()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, r)
	}()
	return w, func() {
		w.Close()
		<-drained
		r.Close()
	}
}
