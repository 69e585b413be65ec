package hub

import (
	"sync"
	"time"
)

// Link is the socket a Queue writes to. The transport supplies it; the
// queue's writer is its only caller, one call at a time.
type Link interface {
	// WriteFrames writes frames, each a complete WebSocket frame, in order
	// and in as few system calls as it can (one writev(2) on TCP). A write
	// not finished by deadline fails. frames is the caller's: it must not
	// be kept.
	WriteFrames(frames [][]byte, deadline time.Time) error
	// WriterDone is called once, when the close frame has been written (err
	// nil) or a write failed (err set): nothing more will be written.
	WriterDone(err error)
}

// QueueOptions bound a connection's outbound queue.
type QueueOptions struct {
	// MaxAudio is how many audio messages may wait; past it the oldest audio
	// is dropped (late audio is worthless). Default 128.
	MaxAudio int
	// MaxControl bounds queued control messages; a connection that lets that
	// many pile up is not reading at all and is treated as slow. Default 1024.
	MaxControl int
	// StallTimeout is how long the oldest message not yet written may wait
	// (audio dropped in the meantime does not reset the clock) before the
	// connection counts as slow, on top of Coalesce, which holds messages
	// on purpose. 0 disables the check.
	StallTimeout time.Duration
	// WriteTimeout is how long a socket that accepts nothing is kept past
	// the stall bound (or past the decision to close a slow connection)
	// before the write fails and the connection ends without a close
	// frame. Default 10 s.
	WriteTimeout time.Duration
	// Coalesce delays each write so more queued audio shares it; control
	// messages, pings, pongs and the close frame never wait for it.
	Coalesce time.Duration
	// OnSlow runs once, outside the queue's lock, when the connection falls
	// behind past a bound, with how long its oldest message had waited. The
	// queue then skips audio; the transport closes it (4008).
	OnSlow func(waited time.Duration)
	// OnWrite counts what each successful write carried.
	OnWrite func(messages, audio int)
}

// Queue is a connection's bounded outbound queue and its writer. Any
// goroutine pushes; one writer goroutine, running only while there is work,
// takes everything waiting at once and hands it to the Link in a single
// call. Pings, pongs and the close frame ride in the same write.
type Queue struct {
	opts QueueOptions
	link Link

	mu          sync.Mutex
	items       []*Message
	audio       int
	control     int
	dropped     uint64
	stopped     bool // Stop: pushes are no-ops, the writer exits
	written     bool // the close frame went out (or never will)
	slowFired   bool
	audioPaused bool
	writing     bool      // a writer goroutine is running
	head        time.Time // made-time of the oldest message pushed since the last take
	inflight    time.Time // made-time of the oldest message of the batch being written

	ping        bool
	pong        []byte
	closing     bool
	closeCode   int
	closeReason string

	ready chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// NewQueue returns an empty queue. Until Attach gives it a link, messages
// only accumulate (Take reads them).
func NewQueue(o QueueOptions) *Queue {
	if o.MaxAudio <= 0 {
		o.MaxAudio = 128
	}
	if o.MaxControl <= 0 {
		o.MaxControl = 1024
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	return &Queue{opts: o, ready: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Attach gives the queue the socket it writes to; from then on a writer
// runs whenever there is something to write. Call it once, before the
// connection's first message.
func (q *Queue) Attach(l Link) {
	q.mu.Lock()
	q.link = l
	q.mu.Unlock()
}

// Push queues m. It reports how many audio messages it dropped to make room
// (0 or 1) and false when the queue is closed or the message was not wanted
// (audio while playback is paused, or for a slow connection).
func (q *Queue) Push(m *Message) (queued bool, dropped int) {
	q.mu.Lock()
	if q.stopped || q.written || (m.Audio && (q.audioPaused || q.slowFired)) {
		q.mu.Unlock()
		return false, 0
	}
	if m.Audio {
		if q.audio >= q.opts.MaxAudio {
			q.dropOldestAudio()
			dropped = 1
		}
		q.audio++
	} else {
		q.control++
	}
	if q.head.IsZero() {
		q.head = m.born
	}
	// A push into a queue that already waits needs no signal: the first
	// push signalled, and the writer takes everything at once.
	wasEmpty := len(q.items) == 0
	q.items = append(q.items, m)
	var waited time.Duration
	slow := false
	if !q.slowFired {
		waited = q.waitedLocked(m.born)
		if q.control > q.opts.MaxControl || q.stalled(waited) {
			slow = true
			q.markSlowLocked()
		}
	}
	start := q.claimWriterLocked()
	q.mu.Unlock()

	if wasEmpty || start {
		q.signal(start)
	}
	if slow && q.opts.OnSlow != nil {
		q.opts.OnSlow(waited)
	}
	return true, dropped
}

// waitedLocked is how long, at now, the oldest message not yet written has
// waited: the batch being written, or else the oldest queued one.
func (q *Queue) waitedLocked(now time.Time) time.Duration {
	oldest := q.inflight
	if oldest.IsZero() {
		oldest = q.head
	}
	if oldest.IsZero() {
		return 0
	}
	return now.Sub(oldest)
}

// stalled reports whether a connection whose oldest unwritten message has
// waited this long is too slow.
func (q *Queue) stalled(waited time.Duration) bool {
	return q.opts.StallTimeout > 0 && waited > q.opts.StallTimeout+q.opts.Coalesce
}

// markSlowLocked gives up on the connection's audio: what waits is dropped
// and no more is taken. Control messages still go out, then the close.
func (q *Queue) markSlowLocked() {
	q.slowFired = true
	q.discardAudioLocked()
}

func (q *Queue) dropOldestAudio() {
	for i, it := range q.items {
		if it.Audio {
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = nil
			q.items = q.items[:len(q.items)-1]
			q.audio--
			q.dropped++
			return
		}
	}
}

func (q *Queue) discardAudioLocked() {
	if q.audio == 0 {
		return
	}
	kept := q.items[:0]
	for _, it := range q.items {
		if !it.Audio {
			kept = append(kept, it)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
	q.audio = 0
	if len(q.items) == 0 {
		q.head = time.Time{}
	}
}

// Take moves every waiting message into dst (reusing its capacity) and
// returns it, for a queue without a link: its messages are read, not
// written. The batch counts as written at once.
func (q *Queue) Take(dst []*Message) []*Message {
	q.mu.Lock()
	dst = q.takeLocked(dst)
	q.inflight = time.Time{}
	q.mu.Unlock()
	return dst
}

func (q *Queue) takeLocked(dst []*Message) []*Message {
	dst = append(dst[:0], q.items...)
	clear(q.items)
	q.items = q.items[:0]
	q.audio, q.control = 0, 0
	if q.inflight.IsZero() {
		q.inflight = q.head
	}
	q.head = time.Time{}
	return dst
}

// SetAudioPaused stops (or resumes) queueing audio, for a listener that paused
// playback; audio already waiting is discarded on pause.
func (q *Queue) SetAudioPaused(p bool) {
	q.mu.Lock()
	q.audioPaused = p
	if p {
		q.discardAudioLocked()
	}
	q.mu.Unlock()
}

// Dropped is the total number of audio messages dropped.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Len is the number of waiting messages.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Ping queues a ping frame.
func (q *Queue) Ping() {
	q.mu.Lock()
	q.ping = true
	q.mu.Unlock()
	q.wake()
}

// Pong queues the answer to a ping; only the latest ping is answered.
func (q *Queue) Pong(payload []byte) {
	q.mu.Lock()
	q.pong = append(q.pong[:0], payload...)
	q.mu.Unlock()
	q.wake()
}

// Close writes what is queued, then a close frame with code and reason; the
// first close wins. It never blocks; Done is closed once the frame is out.
func (q *Queue) Close(code int, reason string) {
	q.mu.Lock()
	if !q.closing {
		q.closing = true
		q.closeCode, q.closeReason = code, reason
	}
	q.mu.Unlock()
	q.wake()
}

// Closing reports whether Close was called.
func (q *Queue) Closing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// Done is closed when the close frame has been written, or when writing
// failed and it never will be.
func (q *Queue) Done() <-chan struct{} { return q.done }

// Stop makes every later Push a no-op and ends the writer.
func (q *Queue) Stop() {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		close(q.stop)
	}
	q.mu.Unlock()
}

func (q *Queue) wake() {
	q.mu.Lock()
	start := q.claimWriterLocked()
	q.mu.Unlock()
	q.signal(start)
}

// claimWriterLocked reports whether the caller must start a writer.
func (q *Queue) claimWriterLocked() bool {
	if q.link == nil || q.writing || q.written || q.stopped {
		return false
	}
	q.writing = true
	return true
}

func (q *Queue) signal(start bool) {
	select {
	case q.ready <- struct{}{}:
	default:
	}
	if start {
		go q.run()
	}
}

// park is called by a writer that found nothing to do for a while. It
// reports whether the writer may exit: only when nothing is waiting, so no
// work is ever left without a writer. The next push or wake starts one.
func (q *Queue) park() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || q.ping || q.pong != nil || q.closing {
		return false
	}
	q.writing = false
	return true
}

// urgent reports whether something waits that must not wait for a
// coalescing window.
func (q *Queue) urgent() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing || q.ping || q.pong != nil || q.control > 0
}

// writerLinger is how long a writer waits for more work before it exits.
const writerLinger = 2 * time.Second

// run is the writer. Everything waiting goes out in one Link call: the
// write itself is most of a fan-out server's CPU, so fewer writes per
// delivered frame is the lever that matters. It exits after writerLinger
// without work, so an idle listener costs no goroutine here.
func (q *Queue) run() {
	var (
		batch    []*Message
		frames   [][]byte
		deadline time.Time
	)
	// The linger timer is not reset per batch (a timer operation per frame
	// would show in the profile): when it fires, it checks how long the
	// writer has really been idle.
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	lastWork := time.Now()
	for {
		select {
		case <-q.ready:
		case <-q.stop:
			return
		case <-linger.C:
			if idle := time.Since(lastWork); idle < writerLinger {
				linger.Reset(writerLinger - idle)
				continue
			}
			if q.park() {
				return
			}
			linger.Reset(writerLinger)
			continue
		}
		lastWork = time.Now()
		if d := q.opts.Coalesce; d > 0 && !q.urgent() {
			// Let more audio gather: fewer, fuller writes for a little
			// latency. Control queued during the window waits for it (at
			// most d).
			time.Sleep(d)
		}

		q.mu.Lock()
		batch = q.takeLocked(batch)
		ping, pong := q.ping, q.pong
		q.ping, q.pong = false, nil
		closing, code, reason := q.closing, q.closeCode, q.closeReason
		slow := q.slowFired
		waited := q.waitedLocked(lastWork)
		if !slow && q.stalled(waited) {
			// Caught here when nothing was pushed since the stall began.
			q.markSlowLocked()
			slow = true
			q.mu.Unlock()
			if q.opts.OnSlow != nil {
				q.opts.OnSlow(waited)
			}
			q.mu.Lock()
			closing, code, reason = q.closing, q.closeCode, q.closeReason
		}
		oldest := q.inflight
		q.mu.Unlock()

		clear(frames)
		frames = frames[:0]
		if ping {
			frames = append(frames, pingFrame)
		}
		if pong != nil {
			frames = append(frames, controlFrame(opPong, pong))
		}
		messages, audio := 0, 0
		for i, m := range batch {
			batch[i] = nil
			if slow && m.Audio {
				continue
			}
			frames = append(frames, m.wire)
			messages++
			if m.Audio {
				audio++
			}
		}
		if closing {
			frames = append(frames, closeFrame(code, reason))
		}
		if len(frames) > 0 {
			deadline = q.deadline(deadline, oldest, lastWork, slow)
			if err := q.link.WriteFrames(frames, deadline); err != nil {
				q.mu.Lock()
				waited := q.waitedLocked(time.Now())
				fire := !q.slowFired && q.stalled(waited)
				if fire {
					q.markSlowLocked()
				}
				q.mu.Unlock()
				if fire && q.opts.OnSlow != nil {
					q.opts.OnSlow(waited)
				}
				q.finish(err)
				return
			}
			q.mu.Lock()
			q.inflight = time.Time{}
			q.mu.Unlock()
			if messages > 0 && q.opts.OnWrite != nil {
				q.opts.OnWrite(messages, audio)
			}
		} else {
			q.mu.Lock()
			q.inflight = time.Time{}
			q.mu.Unlock()
		}
		if closing {
			q.finish(nil)
			return
		}
	}
}

// deadline returns the write deadline for a batch whose oldest message was
// made at oldest (zero: only pings and pongs). It must not fall before the
// stall bound, or a stalled socket would be cut before it can be told, and
// it is moved only when less than half its margin is left: one timer update
// every few seconds, not one per write. Once the connection is slow the
// deadline only stands: what is left (control and the close frame) must get
// out within WriteTimeout of the decision.
func (q *Queue) deadline(cur, oldest, now time.Time, slow bool) time.Time {
	limit := q.opts.WriteTimeout
	if slow {
		if !cur.After(now) || cur.After(now.Add(limit)) {
			return now.Add(limit)
		}
		return cur
	}
	if oldest.IsZero() || oldest.After(now) {
		oldest = now
	}
	want := oldest.Add(q.opts.StallTimeout + q.opts.Coalesce + limit)
	if cur.Before(want.Add(-limit / 2)) {
		return want
	}
	return cur
}

// finish records that nothing more will be written.
func (q *Queue) finish(err error) {
	q.mu.Lock()
	q.written = true
	q.mu.Unlock()
	close(q.done)
	q.link.WriterDone(err)
}
