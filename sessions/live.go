package sessions

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
)

// live is the in-memory side of a session that is not ended: its fan-out
// room, its speaker connections and its timers.
type live struct {
	s    *Service
	id   string
	room *hub.Room

	// The audio path reads these without taking mu.
	gated      atomic.Bool // paused or muted: chunks are dropped
	sourceLang atomic.Pointer[string]
	format     string

	mu       sync.Mutex
	rec      *pentecost.Session
	speakers map[string]*Speaker // every accepted speaker connection
	// listeners holds the handles, to close them when the session ends; the
	// room holds the same listeners for fan-out.
	listeners map[string]*Listener
	primary   *Speaker // the newest; its drop starts the grace
	ended     bool
	inGrace   bool

	graceTimer  clockwork.Timer
	startTimer  clockwork.Timer
	expiryTimer clockwork.Timer
	statusTimer clockwork.Timer
	pending     clockwork.Timer // a deferred listener-count push

	lastStatusCount int
	lastStatusAt    time.Time

	// Processors (translation): the stream ID in their frames, who serves
	// which language, and what the lag estimate needs.
	streamID         uint16
	assign           map[string]*Processor
	translatedFrames map[string]uint32
	translatedBase   map[string]uint32
	captionSeq       map[string]uint32
	ingestMu         sync.Mutex
	ingest           [512]ingestMark
}

type ingestMark struct {
	seq uint32
	at  time.Time
}

func (s *Service) newLive(rec *pentecost.Session) *live {
	l := &live{
		s:                s,
		id:               rec.ID,
		rec:              rec.Clone(),
		speakers:         make(map[string]*Speaker),
		listeners:        make(map[string]*Listener),
		format:           rec.AudioFormat,
		streamID:         s.allocStreamLocked(),
		assign:           map[string]*Processor{},
		translatedFrames: map[string]uint32{},
		translatedBase:   map[string]uint32{},
		captionSeq:       map[string]uint32{},
	}
	s.streams[l.streamID] = l
	l.room = hub.NewRoom(hub.RoomOptions{
		AudioText: audioText(rec.ID, rec.AudioFormat),
		OnDrop:    s.obs.AudioDropped,
		StreamID:  l.streamID,
	})
	src := rec.SourceLanguage
	l.sourceLang.Store(&src)
	l.gated.Store(rec.Broadcast.IsPaused || rec.Broadcast.IsMuted)

	now := s.clock.Now()
	if !rec.ExpiresAt.IsZero() {
		l.expiryTimer = s.clock.AfterFunc(rec.ExpiresAt.Sub(now), func() { l.expire() })
	}
	if rec.SpeakerAttachedAt.IsZero() && s.cfg.StartTimeout > 0 {
		l.startTimer = s.clock.AfterFunc(rec.CreatedAt.Add(s.cfg.StartTimeout).Sub(now), func() { l.expire() })
	}
	if rec.SpeakerLive {
		// The record says a speaker was attached when this node last wrote
		// it: after a restart that speaker is gone, which is a drop like any
		// other, so it gets the grace to come back.
		l.startGraceLocked()
	}
	if s.cfg.StatusInterval > 0 {
		l.statusTimer = s.clock.AfterFunc(s.cfg.StatusInterval, l.periodicStatus)
	}
	l.announceLocked()
	return l
}

// allocStreamLocked picks an unused stream ID (never 0, which listener
// frames carry). The caller holds s.mu.
func (s *Service) allocStreamLocked() uint16 {
	for {
		s.nextStream++
		id := uint16(s.nextStream)
		if id != 0 && s.streams[id] == nil {
			return id
		}
	}
}

// rebalanceIfNeeded re-assigns processors when the set of languages changed,
// skipping the work on a node without processors.
func (l *live) rebalanceIfNeeded(joining string) {
	if l.s.processorCount() == 0 {
		l.mu.Lock()
		none := len(l.assign) == 0
		l.mu.Unlock()
		if none {
			return
		}
	}
	l.rebalance(joining)
}

func (l *live) markIngest(seq uint32, at time.Time) {
	l.ingestMu.Lock()
	l.ingest[seq%uint32(len(l.ingest))] = ingestMark{seq: seq, at: at}
	l.ingestMu.Unlock()
}

func (l *live) stopTimers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopTimersLocked()
}

func (l *live) stopTimersLocked() {
	for _, t := range []clockwork.Timer{l.graceTimer, l.startTimer, l.expiryTimer, l.statusTimer, l.pending} {
		if t != nil {
			t.Stop()
		}
	}
}

// expire runs when a timer says the session may have expired; get re-checks
// with the record and ends it if so.
func (l *live) expire() {
	_, _ = l.s.get(context.Background(), l.id)
}

// speakerConns returns the speaker connections to notify.
func (l *live) speakerConnsLocked() []Conn {
	out := make([]Conn, 0, len(l.speakers))
	for _, sp := range l.speakers {
		out = append(out, sp.conn)
	}
	return out
}

// broadcastLocked queues m to every speaker connection and every listener,
// marshalled once.
func (l *live) broadcastLocked(m protocol.Message, toSpeakers bool) {
	msg := hub.NewControl(protocol.Marshal(m))
	if toSpeakers {
		for _, sp := range l.speakers {
			sp.conn.Queue().Push(msg)
		}
	}
	l.room.Broadcast(msg)
}

func (l *live) startGraceLocked() {
	grace := l.s.cfg.SpeakerGrace
	l.inGrace = true
	secs := int(grace / time.Second)
	l.broadcastLocked(&protocol.SpeakerPresence{
		Header:       protocol.H(protocol.TypeSpeakerDisconnected, l.s.clock.Now()),
		SessionID:    l.id,
		GraceSeconds: &secs,
	}, false)
	if l.graceTimer != nil {
		l.graceTimer.Stop()
	}
	l.graceTimer = l.s.clock.AfterFunc(grace, func() {
		l.mu.Lock()
		still := l.inGrace && !l.ended
		l.mu.Unlock()
		if still {
			l.s.obs.GraceOutcome("timeout")
			_, _ = l.s.end(context.Background(), l.id, pentecost.EndSpeakerTimeout, "")
		}
	})
}

func (l *live) broadcastState() pentecost.BroadcastState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Broadcast
}

// status builds a sessionStatus message.
func (l *live) statusLocked(reason string) *protocol.SessionStatus {
	now := l.s.clock.Now()
	total, dist := l.room.Distribution()
	return &protocol.SessionStatus{
		Header:               protocol.H(protocol.TypeSessionStatus, now),
		SessionID:            l.id,
		ListenerCount:        total,
		LanguageDistribution: dist,
		SessionDuration:      int64(now.Sub(l.rec.CreatedAt) / time.Second),
		BroadcastState:       l.rec.Broadcast,
		UpdateReason:         reason,
	}
}

func (l *live) pushStatusLocked(reason string) {
	if len(l.speakers) == 0 {
		return
	}
	st := l.statusLocked(reason)
	l.lastStatusCount = st.ListenerCount
	l.lastStatusAt = l.s.clock.Now()
	msg := hub.NewControl(protocol.Marshal(st))
	for _, sp := range l.speakers {
		sp.conn.Queue().Push(msg)
	}
}

func (l *live) periodicStatus() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.pushStatusLocked(protocol.StatusPeriodic)
	l.statusTimer = l.s.clock.AfterFunc(l.s.cfg.StatusInterval, l.periodicStatus)
}

// listenersChanged pushes a status to the speaker when a language appears, or
// when the count moved by 10% or more since the last push, at most once per
// StatusMinGap; a change inside the gap is pushed when the gap ends, so the
// speaker always ends up seeing the final count.
func (l *live) listenersChanged(newLang bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	if newLang {
		l.pushStatusLocked(protocol.StatusNewLanguage)
		return
	}
	l.maybeCountPushLocked()
}

func (l *live) maybeCountPushLocked() {
	count := l.room.Count()
	last := l.lastStatusCount
	diff := count - last
	if diff < 0 {
		diff = -diff
	}
	if diff == 0 || (last > 0 && diff*10 < last) {
		return
	}
	now := l.s.clock.Now()
	if wait := l.lastStatusAt.Add(l.s.cfg.StatusMinGap).Sub(now); wait > 0 {
		if l.pending == nil {
			l.pending = l.s.clock.AfterFunc(wait, func() {
				l.mu.Lock()
				defer l.mu.Unlock()
				l.pending = nil
				if !l.ended {
					l.maybeCountPushLocked()
				}
			})
		}
		return
	}
	l.pushStatusLocked(protocol.StatusListenerChange)
}
