package sessions

import (
	"context"
	"errors"
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
	tapped           atomic.Bool // processors receive the source
	ingestMu         sync.Mutex
	ingest           [512]ingestMark

	busErrs atomic.Uint64
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
		SessionID: rec.ID,
		Format:    rec.AudioFormat,
		OnDrop:    s.obs.AudioDropped,
		StreamID:  l.streamID,
	})
	src := rec.SourceLanguage
	l.sourceLang.Store(&src)
	l.room.SetNextSeq(rec.NextSeq)
	l.gated.Store(rec.Broadcast.IsPaused || rec.Broadcast.IsMuted)

	now := s.clock.Now()
	if !rec.ExpiresAt.IsZero() {
		l.expiryTimer = s.clock.AfterFunc(rec.ExpiresAt.Sub(now), func() { l.expire() })
	}
	if rec.SpeakerAttachedAt.IsZero() && s.cfg.StartTimeout > 0 {
		l.startTimer = s.clock.AfterFunc(rec.CreatedAt.Add(s.cfg.StartTimeout).Sub(now), func() { l.expire() })
	}
	if !rec.GraceUntil.IsZero() {
		l.armGraceLocked(rec.GraceUntil)
	}
	if s.cfg.StatusInterval > 0 {
		l.statusTimer = s.clock.AfterFunc(s.cfg.StatusInterval, l.periodicStatus)
	}
	l.announceLocked()
	s.subscribe(controlTopic(rec.ID))
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

// errNotHere stops a grace start on a node that no longer holds the
// speaker: the speaker has attached elsewhere meanwhile.
var errNotHere = errors.New("speaker is on another node")

// speakerGone starts the speaker's grace after its connection ended without
// an explicit end: the record says until when (so any node, or this one
// after a restart, can end the session on time), listeners everywhere hear
// speakerDisconnected, and a timer here ends the session unless the speaker
// is back.
func (l *live) speakerGone() {
	s := l.s
	if s.shuttingDown.Load() {
		return
	}
	now := s.clock.Now()
	until := now.Add(s.cfg.SpeakerGrace)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
		if r.Ended() {
			return errAlreadyEnded
		}
		if s.cluster != nil && r.SpeakerNode != "" && r.SpeakerNode != s.node() {
			return errNotHere
		}
		r.GraceUntil = until
		return nil
	})
	switch {
	case errors.Is(err, errAlreadyEnded), errors.Is(err, errNotHere):
		return
	case err != nil:
		// The store is down: the grace still runs here.
		s.log.Warn("could not persist the speaker's grace", "sessionId", l.id, "err", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended || l.primary != nil {
		return
	}
	if rec != nil {
		l.rec = rec
	}
	l.armGraceLocked(until)
	secs := int(s.cfg.SpeakerGrace / time.Second)
	l.toListenersLocked(&protocol.SpeakerPresence{
		Header:       protocol.H(protocol.TypeSpeakerDisconnected, now),
		SessionID:    l.id,
		GraceSeconds: &secs,
	})
}

// armGraceLocked ends the session at until unless the speaker is back.
func (l *live) armGraceLocked(until time.Time) {
	if l.graceTimer != nil {
		l.graceTimer.Stop()
	}
	l.graceTimer = l.s.clock.AfterFunc(until.Sub(l.s.clock.Now()), func() {
		l.s.graceExpired(context.Background(), l.id)
	})
}

// graceExpired ends a session whose speaker's grace has run out, checking
// the record so a speaker that came back on any node keeps its session.
func (s *Service) graceExpired(ctx context.Context, id string) {
	now := s.clock.Now()
	_, err := s.endIf(ctx, id, pentecost.EndSpeakerTimeout, "", func(r *pentecost.Session) bool {
		return !r.GraceUntil.IsZero() && !now.Before(r.GraceUntil)
	})
	if err == nil {
		s.obs.GraceOutcome("timeout")
	}
}

// maybeRelease forgets a session's live state on a cluster node once no
// connection of it is left here: the other nodes and the store carry it.
func (l *live) maybeRelease() {
	if l.s.cluster == nil {
		return
	}
	l.mu.Lock()
	idle := !l.ended && len(l.speakers) == 0 && l.room.Count() == 0 && l.graceTimer == nil && l.s.processorCount() == 0
	if idle {
		l.stopTimersLocked()
	}
	l.mu.Unlock()
	if idle {
		l.s.dropLive(l)
	}
}

// publishCluster numbers a chunk from the session's shared counter (so the
// sequence continues whichever node the speaker is on), sends it to the
// other nodes in the same round trip, and fans it out here. With Redis down
// the node numbers chunks alone; the counter resumes above them later.
func (l *live) publishCluster(c Cluster, chunk []byte, now time.Time) uint32 {
	msg := make([]byte, 1+originLen+protocol.AudioHeaderSize+len(chunk))
	msg[0] = evAudio
	copy(msg[1:], l.s.origin[:])
	floor := l.room.NextSeq()
	protocol.PutAudioHeader(msg[1+originLen:], protocol.KindSource, 0, floor, now)
	copy(msg[1+originLen+protocol.AudioHeaderSize:], chunk)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	seq, err := c.PublishSequenced(ctx, audioTopic(l.id), msg, audioSeqAt, floor)
	cancel()
	if err != nil {
		seq = floor
		if l.busErrs.Add(1)%500 == 1 {
			l.s.log.Warn("audio not shared with other nodes", "sessionId", l.id, "err", err)
		}
	}
	l.room.Deliver(*l.sourceLang.Load(), seq, now, chunk)
	return seq
}

// notifySourceLocked tells every listener here the new source language.
func (l *live) notifySourceLocked(src string) {
	now := l.s.clock.Now()
	for _, h := range l.listeners {
		lang := h.Language()
		send(h.conn, &protocol.LanguageChanged{
			Header:         protocol.H(protocol.TypeLanguageChanged, now),
			SessionID:      l.id,
			TargetLanguage: lang,
			SourceLanguage: src,
			Translated:     l.translatedLocked(lang),
		})
	}
}

// speakerConnectedLocked reports whether a speaker is on air: here, or on
// any node of a cluster.
func (l *live) speakerConnectedLocked() bool {
	if l.primary != nil {
		return true
	}
	return l.s.cluster != nil && l.rec.SpeakerLive && l.rec.GraceUntil.IsZero()
}

// counts is the session's listener count and distribution: from the room on
// a single node, across every node in a cluster.
func (l *live) counts() (int, map[string]int) {
	if c := l.s.cluster; c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if total, by, err := c.Counts(ctx, l.id); err == nil {
			return total, by
		}
	}
	return l.room.Distribution()
}

// status builds a sessionStatus message.
func (l *live) statusLocked(reason string) *protocol.SessionStatus {
	now := l.s.clock.Now()
	total, dist := l.counts()
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
	count, _ := l.counts()
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
