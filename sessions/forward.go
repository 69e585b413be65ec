package sessions

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarding limits. The forwarder's timeouts run on real time: they are
// network timeouts, like socket deadlines.
const (
	// forwardQueue bounds what waits for the bus: 4 s of one session's
	// 20 ms chunks, a fraction of a second of a busy node's.
	forwardQueue = 4096
	// forwardBatch bounds one Send.
	forwardBatch = 512
	// forwardTimeout bounds one Send: longer, and the bus is taken as down.
	forwardTimeout = 500 * time.Millisecond
	// probeEvery is how often a down bus is asked whether it is back.
	probeEvery = 250 * time.Millisecond
	// outageLogEvery bounds the log lines of one outage.
	outageLogEvery = 10 * time.Second
)

// forwarder sends this node's audio and events to the other nodes through
// the bus on a goroutine of its own, so that nothing on a speaker's path,
// and no caller holding a lock, ever waits on the bus. Its queue is bounded:
// when full it drops the oldest audio. When a Send fails the bus is taken as
// down: whatever is queued, and whatever comes while it is down, is dropped
// and counted (late audio is worthless, and other nodes converge through the
// store and their timers), until a Ping answers; then sending resumes with
// what arrives from then on, so the other nodes get no backlog burst.
type forwarder struct {
	bus Bus
	log *slog.Logger
	obs Observer

	mu       sync.Mutex
	queue    []Envelope
	inflight int // envelopes taken and being sent
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}

	down        atomic.Bool
	downSince   time.Time
	lastLog     time.Time
	droppedAud  int // during the current outage
	droppedEvts int
}

func newForwarder(bus Bus, log *slog.Logger, obs Observer) *forwarder {
	return &forwarder{
		bus:  bus,
		log:  log,
		obs:  obs,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// push queues env for the other nodes. It never blocks.
func (f *forwarder) push(env Envelope) {
	f.mu.Lock()
	if len(f.queue) >= forwardQueue {
		f.dropOldestLocked()
	}
	f.queue = append(f.queue, env)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// dropOldestLocked makes room: the oldest audio goes, or, with only events
// queued, the oldest event.
func (f *forwarder) dropOldestLocked() {
	at := 0
	for i, e := range f.queue {
		if e.Numbered {
			at = i
			break
		}
	}
	gone := f.queue[at]
	f.queue = append(f.queue[:at], f.queue[at+1:]...)
	f.count(gone, 1)
}

// count records dropped envelopes of gone's kind.
func (f *forwarder) count(gone Envelope, n int) {
	if gone.Numbered {
		f.obs.BusDropped("audio", n)
		f.droppedAud += n
	} else {
		f.obs.BusDropped("event", n)
		f.droppedEvts += n
	}
}

// take moves up to forwardBatch queued envelopes out.
func (f *forwarder) take() []Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(f.queue), forwardBatch)
	if n == 0 {
		return nil
	}
	batch := make([]Envelope, n)
	copy(batch, f.queue)
	f.queue = append(f.queue[:0], f.queue[n:]...)
	f.inflight = n
	return batch
}

// sent marks the batch taken last as sent or dropped.
func (f *forwarder) sent() {
	f.mu.Lock()
	f.inflight = 0
	f.mu.Unlock()
}

// idle reports whether everything pushed so far has been sent or dropped.
func (f *forwarder) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue) == 0 && f.inflight == 0
}

// drop counts a batch that will not be sent.
func (f *forwarder) drop(batch []Envelope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range batch {
		f.count(e, 1)
	}
}

func (f *forwarder) run() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			f.flush()
			return
		case <-f.wake:
		}
		for {
			batch := f.take()
			if len(batch) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
			err := f.bus.Send(ctx, batch)
			cancel()
			if err != nil {
				f.drop(batch)
			}
			f.sent()
			if err != nil && !f.outage(err) {
				return
			}
		}
	}
}

// outage drops everything until the bus answers a Ping again. It reports
// false if the forwarder was stopped meanwhile.
func (f *forwarder) outage(cause error) bool {
	now := time.Now()
	f.down.Store(true)
	f.obs.BusUp(false)
	f.downSince, f.lastLog = now, now
	f.log.Warn("cross-node bus unavailable: audio and events for other nodes are dropped until it answers", "err", cause)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			f.drop(f.take())
			return false
		case <-f.wake:
			f.drop(f.take())
			continue
		case <-t.C:
		}
		f.drop(f.take())
		ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
		err := f.bus.Ping(ctx)
		cancel()
		f.mu.Lock()
		audio, events := f.droppedAud, f.droppedEvts
		f.mu.Unlock()
		if err == nil {
			// What waited during the probe is stale too.
			f.drop(f.take())
			f.mu.Lock()
			audio, events = f.droppedAud, f.droppedEvts
			f.droppedAud, f.droppedEvts = 0, 0
			f.mu.Unlock()
			f.down.Store(false)
			f.obs.BusUp(true)
			f.log.Warn("cross-node bus is back", "down", time.Since(f.downSince).Round(time.Millisecond),
				"droppedAudio", audio, "droppedEvents", events)
			return true
		}
		if time.Since(f.lastLog) >= outageLogEvery {
			f.lastLog = time.Now()
			f.log.Warn("cross-node bus still unavailable", "down", time.Since(f.downSince).Round(time.Second),
				"droppedAudio", audio, "droppedEvents", events, "err", err)
		}
	}
}

// flush sends what is queued at the stop, once; with the bus down it is
// counted as dropped.
func (f *forwarder) flush() {
	batch := f.take()
	defer f.sent()
	if f.down.Load() {
		f.drop(batch)
		return
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	if err := f.bus.Send(ctx, batch); err != nil {
		f.drop(batch)
	}
}

// close stops the forwarder after a last flush.
func (f *forwarder) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}
