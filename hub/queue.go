package hub

import "sync"

// QueueOptions bound a connection's outbound queue.
type QueueOptions struct {
	// MaxAudio is how many audio messages may wait; past it the oldest audio
	// is dropped (late audio is worthless). Default 128.
	MaxAudio int
	// SlowAfter is how many audio messages may be dropped without one
	// successful write in between before the listener counts as stuck and
	// OnSlow runs. Default 4*MaxAudio.
	SlowAfter int
	// MaxControl bounds queued control messages; a connection that lets that
	// many pile up is not reading at all and is treated as slow. Default 1024.
	MaxControl int
	// OnSlow runs once, outside the queue's lock, when the connection falls
	// behind past the bound; the transport closes it with 4008.
	OnSlow func()
	// StartWriter, when set, is called (outside the lock) when work arrives
	// and no writer is running; the writer calls Park to stop. An idle
	// connection then keeps no writer goroutine at all.
	StartWriter func()
}

// Queue is a connection's bounded outbound queue. Any goroutine may push;
// one writer goroutine takes everything waiting at once and writes it in a
// single system call.
type Queue struct {
	opts QueueOptions

	mu          sync.Mutex
	items       []*Message
	audio       int
	control     int
	dropped     uint64
	dropsSince  int
	closed      bool
	slowFired   bool
	audioPaused bool
	writing     bool // a writer is running (with StartWriter)

	ready chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue(o QueueOptions) *Queue {
	if o.MaxAudio <= 0 {
		o.MaxAudio = 128
	}
	if o.SlowAfter <= 0 {
		o.SlowAfter = 4 * o.MaxAudio
	}
	if o.MaxControl <= 0 {
		o.MaxControl = 1024
	}
	return &Queue{opts: o, ready: make(chan struct{}, 1)}
}

// Ready is signalled whenever messages are waiting.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Push queues m. It reports how many audio messages it dropped to make room
// (0 or 1) and false when the queue is closed or the message was not wanted
// (audio while playback is paused).
func (q *Queue) Push(m *Message) (queued bool, dropped int) {
	var slow bool
	q.mu.Lock()
	if q.closed || (m.Audio && q.audioPaused) {
		q.mu.Unlock()
		return false, 0
	}
	if m.Audio {
		if q.audio >= q.opts.MaxAudio {
			q.dropOldestAudio()
			dropped = 1
			q.dropsSince++
			if q.dropsSince > q.opts.SlowAfter && !q.slowFired {
				q.slowFired, slow = true, true
			}
		}
		q.audio++
	} else {
		q.control++
		if q.control > q.opts.MaxControl && !q.slowFired {
			q.slowFired, slow = true, true
		}
	}
	// A push into a queue that already waits needs no signal: the first
	// push signalled, and the writer takes everything at once.
	wasEmpty := len(q.items) == 0
	q.items = append(q.items, m)
	start := q.claimWriterLocked()
	q.mu.Unlock()

	if wasEmpty || start {
		q.signal(start)
	}
	if slow && q.opts.OnSlow != nil {
		q.opts.OnSlow()
	}
	return true, dropped
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

// Take moves every waiting message into dst (reusing its capacity) and
// returns it. The writer calls it, writes the batch, then calls Wrote.
func (q *Queue) Take(dst []*Message) []*Message {
	q.mu.Lock()
	dst = append(dst[:0], q.items...)
	clear(q.items)
	q.items = q.items[:0]
	q.audio, q.control = 0, 0
	q.mu.Unlock()
	return dst
}

// ControlWaiting reports whether a control message is queued.
func (q *Queue) ControlWaiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.control > 0
}

// Wrote records a successful write: the listener is keeping up again.
func (q *Queue) Wrote() {
	q.mu.Lock()
	q.dropsSince = 0
	q.mu.Unlock()
}

// SetAudioPaused stops (or resumes) queueing audio, for a listener that paused
// playback; audio already waiting is discarded on pause.
func (q *Queue) SetAudioPaused(p bool) {
	q.mu.Lock()
	q.audioPaused = p
	if p && q.audio > 0 {
		kept := q.items[:0]
		for _, it := range q.items {
			if !it.Audio {
				kept = append(kept, it)
			}
		}
		clear(q.items[len(kept):])
		q.items = kept
		q.audio = 0
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

// Close makes every later Push a no-op.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Wake signals the writer without queueing anything, for work it keeps
// outside the queue (pings, pongs, the close frame).
func (q *Queue) Wake() {
	q.mu.Lock()
	start := q.claimWriterLocked()
	q.mu.Unlock()
	q.signal(start)
}

// claimWriterLocked reports whether the caller must start a writer.
func (q *Queue) claimWriterLocked() bool {
	if q.opts.StartWriter == nil || q.writing {
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
		q.opts.StartWriter()
	}
}

// Park is called by a writer that found nothing to do for a while. It
// reports whether the writer may exit: only when nothing is waiting, so no
// work is ever left without a writer. The next Push or Wake starts one.
func (q *Queue) Park() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		return false
	}
	q.writing = false
	return true
}
