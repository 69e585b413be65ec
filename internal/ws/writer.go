package ws

import (
	"bufio"
	"encoding/binary"
	"net"
	"time"

	"github.com/pentecost/pentecost/hub"
)

// writer drains the connection's queue. Everything waiting is written in a
// single system call (writev on plain TCP, one buffered flush on TLS): the
// write itself is most of a fan-out server's CPU, so fewer writes per
// delivered frame is the lever that matters.
//
// The writer runs only while there is work: the queue starts it when a
// message arrives, and it exits after writerLinger without any, so an idle
// listener costs one goroutine (its reader), not two.
func (c *conn) writer() {
	var (
		batch []*hub.Message
		bufs  net.Buffers
		bw    *bufio.Writer
	)
	_, plainTCP := c.nc.(*net.TCPConn)
	if !plainTCP {
		bw = bufio.NewWriterSize(c.nc, 16*1024)
	}
	// The linger timer is not reset per batch (a timer operation per frame
	// would show in the profile): when it fires, it checks how long the
	// writer has really been idle.
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	lastWork := time.Now()
	var deadline time.Time
	for {
		select {
		case <-c.q.Ready():
		case <-c.ctx.Done():
			return
		case <-linger.C:
			if idle := time.Since(lastWork); idle < writerLinger {
				linger.Reset(writerLinger - idle)
				continue
			}
			if c.q.Park() {
				return
			}
			linger.Reset(writerLinger)
			continue
		}
		lastWork = time.Now()
		if d := c.srv.cfg.WriteCoalesce; d > 0 && !c.urgent() {
			// Let more audio gather: fewer, fuller writes for a little
			// latency. A batch with a control message, a ping, a pong or
			// the close frame goes at once; control queued during the
			// window waits for it (at most d).
			time.Sleep(d)
		}
		batch = c.q.Take(batch)
		c.mu.Lock()
		pong, ping := c.pong, c.ping
		c.pong, c.ping = nil, false
		closing, slow := c.closing, c.slow
		code, reason := c.closeCode, c.closeReason
		c.mu.Unlock()

		clear(bufs)
		bufs = bufs[:0]
		if ping {
			bufs = append(bufs, controlFrame(0x9, nil))
		}
		if pong != nil {
			bufs = append(bufs, controlFrame(0xA, pong))
		}
		messages, audio := 0, 0
		for i, m := range batch {
			batch[i] = nil
			if slow && m.Audio {
				continue
			}
			bufs = append(bufs, m.Wire(frame))
			messages++
			if m.Audio {
				audio++
			}
		}
		if closing {
			bufs = append(bufs, closeFrame(code, reason))
		}
		if len(bufs) > 0 {
			// The deadline is moved only when less than half of it is
			// left: one timer update per few seconds, not one per write.
			if !slow && deadline.Sub(lastWork) < c.srv.cfg.WriteTimeout/2 {
				deadline = lastWork.Add(c.srv.cfg.WriteTimeout)
				_ = c.nc.SetWriteDeadline(deadline)
			}
			var err error
			if plainTCP {
				if len(bufs) == 1 {
					_, err = c.nc.Write(bufs[0])
				} else {
					// WriteTo consumes the slice it is given: hand it a
					// copy of the header so bufs keeps its capacity and the
					// next batch allocates nothing.
					wb := bufs
					_, err = wb.WriteTo(c.nc)
				}
			} else {
				for _, b := range bufs {
					if _, err = bw.Write(b); err != nil {
						break
					}
				}
				if err == nil {
					err = bw.Flush()
				}
			}
			if err != nil {
				// The reader notices the closed socket and tears down.
				_ = c.nc.Close()
				c.closeWritten()
				return
			}
			c.q.Wrote()
			if messages > 0 {
				c.srv.o.Observer.FramesWritten(messages, audio)
			}
		}
		if closing {
			// Wait briefly for the client's close reply, then the reader
			// gives up and tears down.
			_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.CloseWait))
			c.closeWritten()
			return
		}
	}
}

// urgent reports whether the writer has something that must not wait for a
// coalescing window.
func (c *conn) urgent() bool {
	c.mu.Lock()
	u := c.closing || c.ping || c.pong != nil
	c.mu.Unlock()
	return u || c.q.ControlWaiting()
}

// writerLinger is how long a writer waits for more work before it exits.
const writerLinger = 2 * time.Second

// closeWritten records that the close frame went out (or never will).
func (c *conn) closeWritten() { c.closedFrame.Do(func() { close(c.writerDone) }) }

// frame encodes m as one unmasked server frame, header and payload in one
// slice, so it can be shared by every connection it goes to.
func frame(m *hub.Message) []byte {
	op := byte(0x1)
	if m.Binary {
		op = 0x2
	}
	return appendFrame(nil, op, m.Payload)
}

func appendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|op, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

func controlFrame(op byte, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	return appendFrame(make([]byte, 0, 2+len(payload)), op, payload)
}

func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	p = append(p, reason...)
	return appendFrame(nil, 0x8, p)
}
