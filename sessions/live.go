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

// liveSession is this node's live side of a session that is not ended: its
// fan-out room, its connections here, its timers and its bus subscriptions.
type liveSession struct {
	s    *Service
	id   string
	room *hub.Room
	// ready is closed once the session follows its control topic; whoever
	// finds the session waits for it.
	ready chan struct{}

	// The audio path reads these without taking mu.
	gated      atomic.Bool // paused or muted: chunks are dropped
	sourceLang atomic.Pointer[string]
	format     string
	packetMs   int

	// Conversions between codecs (codec.go): one converter per stream and
	// codec it arrives in, and whether other nodes have listeners (who may
	// want Opus encoded here).
	convMu          sync.Mutex
	conv            map[convKey]*converter
	remoteListeners atomic.Bool

	mu  sync.Mutex
	rec *pentecost.Session
	// gen counts the writes to rec, so a read of the store that raced with
	// a write here does not overwrite it (Service.open).
	gen      atomic.Uint64
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

	// notifiedSrc is the source language the listeners here were last
	// told of. While it differs from sourceLang a change of source is on
	// its way to them (sourceChanged), telling each its language's
	// delivery, and rebalance leaves them to it.
	notifiedSrc string

	// busNext is one past the last audio number received from the bus
	// (bit 32 set once one was); busGaps counts gaps, for the log.
	busNext atomic.Uint64
	busGaps atomic.Uint64

	// subMu serialises the bus subscriptions, whose calls may wait on the
	// network; mu is never held across them.
	subMu      sync.Mutex
	dropped    bool // set under subMu: no subscription may start
	controlSub Subscription
	audioSub   Subscription
}

type ingestMark struct {
	seq uint32
	at  time.Time
}

// newLiveLocked builds the live side of rec. The caller holds s.mu and
// calls follow once it is released.
func (s *Service) newLiveLocked(rec *pentecost.Session) *liveSession {
	l := &liveSession{
		s:                s,
		id:               rec.ID,
		ready:            make(chan struct{}),
		rec:              rec.Clone(),
		speakers:         make(map[string]*Speaker),
		listeners:        make(map[string]*Listener),
		format:           rec.AudioFormat,
		packetMs:         rec.PacketDuration(),
		conv:             map[convKey]*converter{},
		streamID:         s.allocStreamLocked(),
		assign:           map[string]*Processor{},
		translatedFrames: map[string]uint32{},
		translatedBase:   map[string]uint32{},
		captionSeq:       map[string]uint32{},
	}
	s.byStream[l.streamID] = l
	l.room = hub.NewRoom(hub.RoomOptions{
		SessionID: rec.ID,
		Format:    rec.AudioFormat,
		OnDrop:    s.obs.AudioDropped,
		StreamID:  l.streamID,
	})
	src := rec.SourceLanguage
	l.sourceLang.Store(&src)
	l.notifiedSrc = src
	l.room.RaiseNextSeq(rec.NextSeq)
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
	return l
}

// setRecordLocked replaces the session's record with rec (which the caller
// no longer changes) and the flags the audio path reads from it.
func (l *liveSession) setRecordLocked(rec *pentecost.Session) {
	l.rec = rec
	l.gated.Store(rec.Broadcast.IsPaused || rec.Broadcast.IsMuted)
	l.gen.Add(1)
}

// follow subscribes to the session's control topic, then lets everyone
// who found the session use it.
func (l *liveSession) follow() {
	defer close(l.ready)
	l.subMu.Lock()
	defer l.subMu.Unlock()
	if l.dropped {
		return
	}
	l.controlSub = l.subscribe(controlTopic(l.id))
}

// subscribe has l receive topic's messages; nil if the bus refused.
func (l *liveSession) subscribe(topic string) Subscription {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sub, err := l.s.bus.Subscribe(ctx, topic, l.receive)
	if err != nil {
		l.s.log.Warn("bus subscribe failed", "sessionId", l.id, "topic", topic, "err", err)
		return nil
	}
	return sub
}

// updateAudioSubscription follows the session's audio topic while this
// node has listeners of it (they hear chunks numbered on the speaker's
// node) or a speaker connection (which numbers its chunks above any number
// another node used: see AttachSpeaker).
func (l *liveSession) updateAudioSubscription() {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.mu.Lock()
	want := !l.dropped && (l.room.Count() > 0 || len(l.speakers) > 0)
	l.mu.Unlock()
	switch {
	case want && l.audioSub == nil:
		l.busNext.Store(0) // what was missed while not following is no loss
		l.audioSub = l.subscribe(audioTopic(l.id))
	case !want && l.audioSub != nil:
		l.cancel(&l.audioSub)
	}
}

// cancel ends *sub and forgets it.
func (l *liveSession) cancel(sub *Subscription) {
	if *sub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := (*sub).Cancel(ctx); err != nil {
		l.s.log.Warn("bus unsubscribe failed", "sessionId", l.id, "err", err)
	}
	*sub = nil
}

// unfollow cancels the session's subscriptions for good.
func (l *liveSession) unfollow() {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.dropped = true
	l.cancel(&l.controlSub)
	l.cancel(&l.audioSub)
}

// allocStreamLocked picks an unused stream ID (never 0, which listener
// frames carry). The caller holds s.mu.
func (s *Service) allocStreamLocked() uint16 {
	for {
		s.nextStream++
		id := uint16(s.nextStream)
		if id != 0 && s.byStream[id] == nil {
			return id
		}
	}
}

// rebalanceIfNeeded re-assigns processors when the set of languages changed,
// skipping the work on a node without processors.
func (l *liveSession) rebalanceIfNeeded(joining string) {
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

func (l *liveSession) markIngest(seq uint32, at time.Time) {
	l.ingestMu.Lock()
	l.ingest[seq%uint32(len(l.ingest))] = ingestMark{seq: seq, at: at}
	l.ingestMu.Unlock()
}

func (l *liveSession) stopTimers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopTimersLocked()
}

func (l *liveSession) stopTimersLocked() {
	for _, t := range []clockwork.Timer{l.graceTimer, l.startTimer, l.expiryTimer, l.statusTimer, l.pending} {
		if t != nil {
			t.Stop()
		}
	}
}

// expire runs when a timer says the session may have expired; get re-checks
// with the record and ends it if so.
func (l *liveSession) expire() {
	_, _ = l.s.get(context.Background(), l.id)
}

// speakerConns returns the speaker connections to notify.
func (l *liveSession) speakerConnsLocked() []Conn {
	out := make([]Conn, 0, len(l.speakers))
	for _, sp := range l.speakers {
		out = append(out, sp.conn)
	}
	return out
}

// broadcastLocked queues m to every speaker connection and every listener,
// marshalled once.
func (l *liveSession) broadcastLocked(m protocol.Message, toSpeakers bool) {
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
func (l *liveSession) speakerGone() {
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
		if r.SpeakerNode != "" && r.SpeakerNode != s.node {
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
		l.setRecordLocked(rec)
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
func (l *liveSession) armGraceLocked(until time.Time) {
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

// maybeRelease forgets the session's live side once no connection, grace
// timer or processor of it is left here: the store (and in a cluster the
// other nodes) carry it, and a read takes it up again. A draining node keeps
// them all for Close, which saves their sequence numbers.
func (l *liveSession) maybeRelease() {
	if l.s.shuttingDown.Load() {
		return
	}
	l.mu.Lock()
	idle := !l.ended && len(l.speakers) == 0 && l.room.Count() == 0 && l.graceTimer == nil && l.s.processorCount() == 0
	if idle {
		l.stopTimersLocked()
	}
	l.mu.Unlock()
	if idle {
		l.s.drop(l)
	}
}

// sourceChanged follows a new source language (already stored): the
// assignment is run again (a language that became the source keeps a
// processor only if it transcribes; the former source may get one), then
// every listener here is told the source and its language's delivery.
func (l *liveSession) sourceChanged() {
	l.rebalanceIfNeeded("")
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.notifySourceLocked()
	}
}

// notifySourceLocked tells every listener here the source language.
func (l *liveSession) notifySourceLocked() {
	src := *l.sourceLang.Load()
	l.notifiedSrc = src
	now := l.s.clock.Now()
	for _, h := range l.listeners {
		lang := h.Language()
		send(h.conn, &protocol.LanguageChanged{
			Header:         protocol.H(protocol.TypeLanguageChanged, now),
			SessionID:      l.id,
			TargetLanguage: lang,
			SourceLanguage: src,
			Translated:     l.translatedLocked(lang),
			Captions:       l.captionsLocked(lang),
		})
	}
}

// speakerConnectedLocked reports whether a speaker is on air: here, or,
// as the record says, on another node.
func (l *liveSession) speakerConnectedLocked() bool {
	if l.primary != nil {
		return true
	}
	return l.rec.SpeakerLive && l.rec.GraceUntil.IsZero() && l.rec.SpeakerNode != l.s.node
}

// counts is the session's listener count and distribution on every node.
func (l *liveSession) counts() (int, map[string]int) { return l.s.counts(l.id, l) }

// status builds a sessionStatus message.
func (l *liveSession) statusLocked(reason string) *protocol.SessionStatus {
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

func (l *liveSession) pushStatusLocked(reason string) {
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

func (l *liveSession) periodicStatus() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	if len(l.speakers) > 0 {
		// Also catches a presence event lost in a bus outage.
		l.noteRemoteListenersLocked()
	}
	l.pushStatusLocked(protocol.StatusPeriodic)
	l.statusTimer = l.s.clock.AfterFunc(l.s.cfg.StatusInterval, l.periodicStatus)
}

// noteRemoteListenersLocked records whether other nodes have listeners, who
// may take Opus encoded here (codec.go), and returns the session's count.
func (l *liveSession) noteRemoteListenersLocked() int {
	count, _ := l.counts()
	l.remoteListeners.Store(count > l.room.Count())
	return count
}

// listenersChanged pushes a status to the speaker when a language appears, or
// when the count moved by 10% or more since the last push, at most once per
// StatusMinGap; a change inside the gap is pushed when the gap ends, so the
// speaker always ends up seeing the final count.
func (l *liveSession) listenersChanged(newLang bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Only a node with a speaker pushes statuses and encodes for others:
	// elsewhere the counts (a Redis round trip in a cluster) are not needed.
	if l.ended || len(l.speakers) == 0 {
		return
	}
	count := l.noteRemoteListenersLocked()
	if newLang {
		l.pushStatusLocked(protocol.StatusNewLanguage)
		return
	}
	l.maybeCountPushLocked(count)
}

// maybeCountPushLocked pushes the listener count when it moved enough;
// count is the current one.
func (l *liveSession) maybeCountPushLocked(count int) {
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
					count, _ := l.counts()
					l.maybeCountPushLocked(count)
				}
			})
		}
		return
	}
	l.pushStatusLocked(protocol.StatusListenerChange)
}
