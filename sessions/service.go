package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
)

// Config holds the rules' knobs; every duration is configurable so tests run
// hours of session life in milliseconds.
type Config struct {
	MaxListeners   int           // per session; 0 = no cap
	SpeakerGrace   time.Duration // reconnect window after a speaker's unexpected drop
	StartTimeout   time.Duration // a session never attached by its speaker ends after this
	MaxDuration    time.Duration // 0 = unlimited
	EndedRetention time.Duration // ended sessions read as ended, and keep their ID, this long
	StatusInterval time.Duration // periodic sessionStatus to the speaker
	StatusMinGap   time.Duration // listener-count pushes at most this often
	RefreshOverlap time.Duration // the old connection of a refresh is closed after this
	SweepInterval  time.Duration
	// ReassertInterval is how often the node re-asserts its listener
	// counts in the presence.
	ReassertInterval time.Duration
	SessionsPerHour  int // per user; 0 = unlimited
	// Transcode converts between pcm16 and Opus for listeners and
	// processors that ask for the codec the audio does not arrive in
	// (docs/protocol.md 7.4). It needs a build with Opus; without, or when
	// false, every client receives the session's format.
	Transcode bool
	// DefaultPacketMs is the packet duration of a session created without
	// one (20, 40 or 60; 0: pentecost.DefaultPacketMs).
	DefaultPacketMs int
}

// DefaultConfig returns the defaults of docs/protocol.md, "Limits and rate limits".
func DefaultConfig() Config {
	return Config{
		MaxListeners:     500,
		SpeakerGrace:     60 * time.Second,
		StartTimeout:     24 * time.Hour,
		MaxDuration:      24 * time.Hour,
		EndedRetention:   24 * time.Hour,
		StatusInterval:   30 * time.Second,
		StatusMinGap:     time.Second,
		RefreshOverlap:   2 * time.Second,
		SweepInterval:    time.Minute,
		ReassertInterval: 2500 * time.Millisecond,
		SessionsPerHour:  50,
		Transcode:        true,
	}
}

// Limiter decides whether a keyed action is allowed now; the embedded and
// Redis limiters implement it.
type Limiter interface {
	Allow(ctx context.Context, key string, perHour int) (ok bool, retryAfter time.Duration, err error)
}

// Observer receives the events metrics are made of. A nil Observer is fine.
type Observer interface {
	SessionCreated(d time.Duration)
	ListenerJoined(d time.Duration)
	SessionEnded(reason string)
	GraceOutcome(outcome string)
	AudioIn(n int)
	AudioDropped(n int)
	Refreshed(role string)
	RateLimited(kind string)
	Processors(n int)
	LanguagePairs(sessionID string, served, unserved int)
	ProcessingLag(lang string, d time.Duration)
	// Transcoded counts Opus packets encoded or decoded (op "encode",
	// "decode") for listeners and processors: once per stream, whatever
	// the number of clients.
	Transcoded(op string, n int)
	// BusDropped counts what this node could not send to the other nodes
	// (kind "audio" or "event"); BusUp says whether the bus carries.
	BusDropped(kind string, n int)
	BusUp(up bool)
	// BusAudioMissing counts source chunks that never arrived from the
	// speaker's node (gaps in their sequence numbers).
	BusAudioMissing(n int)
	// RecordReasserted counts what this node wrote back into the shared
	// state: a lost record ("recreated"), or the facts of a speaker on air
	// here that another node took for gone ("speaker").
	RecordReasserted(what string)
}

// Service applies the session rules. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store pentecost.SessionStore
	clock clockwork.Clock
	// stateClock drives Reassert (Options.SharedStateClock).
	stateClock clockwork.Clock
	log        *slog.Logger
	ids        sessionid.Generator
	limit      Limiter
	obs        Observer

	bus      Bus
	fwd      *forwarder
	presence Presence
	node     string // this node's ID, in session records
	origin   [originLen]byte

	mu         sync.RWMutex
	sessions   map[string]*liveSession // the sessions this node holds a live side of
	byStream   map[uint16]*liveSession // the same, by processor stream ID
	nextStream uint32

	procMu sync.Mutex
	procs  []*Processor // in attach order: the first that serves a language gets it

	stop      chan struct{}
	wg        sync.WaitGroup
	startOnce sync.Once

	// shuttingDown is set while the node drains: the speaker connections it
	// closes are not speaker drops, so their grace starts afresh when a node
	// takes the session up again.
	shuttingDown atomic.Bool
}

// Options are the dependencies of a Service.
type Options struct {
	Store    pentecost.SessionStore
	Clock    clockwork.Clock
	Logger   *slog.Logger
	IDs      sessionid.Generator
	Limiter  Limiter
	Observer Observer
	// Bus and Presence are in memory on a single node, on Redis in a
	// cluster.
	Bus      Bus
	Presence Presence
	// SharedStateClock drives the re-assertion of the shared state
	// (Reassert), whose lifetimes run on real time where it lives (Redis
	// key expiry), as socket deadlines do. Default: Clock.
	SharedStateClock clockwork.Clock
}

// New returns a service. Call Start to resume persisted sessions and run the
// sweeper.
func New(cfg Config, o Options) *Service {
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.SharedStateClock == nil {
		o.SharedStateClock = o.Clock
	}
	if cfg.StatusMinGap <= 0 {
		cfg.StatusMinGap = time.Second
	}
	if cfg.EndedRetention <= 0 {
		cfg.EndedRetention = 24 * time.Hour
	}
	svc := &Service{
		cfg:        cfg,
		store:      o.Store,
		clock:      o.Clock,
		stateClock: o.SharedStateClock,
		log:        o.Logger,
		ids:        o.IDs,
		limit:      o.Limiter,
		obs:        o.Observer,
		bus:        o.Bus,
		fwd:        newForwarder(o.Bus, o.Logger, o.Observer),
		presence:   o.Presence,
		node:       o.Presence.Node(),
		sessions:   make(map[string]*liveSession),
		byStream:   make(map[uint16]*liveSession),
		stop:       make(chan struct{}),
	}
	if b, err := hex.DecodeString(svc.node); err == nil && len(b) == originLen {
		copy(svc.origin[:], b)
	} else {
		// Not one of ours: any unique origin does.
		_, _ = rand.Read(svc.origin[:])
	}
	return svc
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Clock returns the service's clock.
func (s *Service) Clock() clockwork.Clock { return s.clock }

// Start takes up the sessions whose holding node is gone (after a restart,
// this node's own earlier run) and starts the background work: the sweeper
// and the re-assertion of what this node holds.
func (s *Service) Start(ctx context.Context) error {
	s.startOnce.Do(func() { go s.fwd.run() })
	recs, err := s.store.List(ctx)
	if err != nil {
		return fmt.Errorf("sessions: resume: %w", err)
	}
	resumed := 0
	for _, rec := range recs {
		if held, err := s.heldElsewhere(ctx, rec); err != nil || held {
			continue
		}
		l := s.liveFor(rec)
		resumed++
		if rec.SpeakerLive && rec.GraceUntil.IsZero() {
			// A speaker was attached to the node that is gone: a drop
			// like any other, so it gets the grace to come back.
			s.adoptDroppedSpeaker(ctx, rec, l)
		}
	}
	if resumed > 0 {
		s.log.Info("resumed sessions", "count", resumed)
	}
	// The tickers exist before Start returns, so a fake clock advanced
	// right after Start fires them.
	if s.cfg.SweepInterval > 0 {
		s.every(s.clock, s.cfg.SweepInterval, s.Sweep)
	}
	if s.cfg.ReassertInterval > 0 {
		s.every(s.stateClock, s.cfg.ReassertInterval, s.Reassert)
	}
	return nil
}

// heldElsewhere reports whether another live node holds the session: its
// speaker, or before any speaker attached, its creator.
func (s *Service) heldElsewhere(ctx context.Context, rec *pentecost.Session) (bool, error) {
	if rec.SpeakerNode == "" || rec.SpeakerNode == s.node {
		return false, nil
	}
	return s.presence.Alive(ctx, rec.SpeakerNode)
}

// BeginShutdown marks the node as draining (see shuttingDown).
func (s *Service) BeginShutdown() { s.shuttingDown.Store(true) }

// ShuttingDown reports whether the node has begun to drain.
func (s *Service) ShuttingDown() bool { return s.shuttingDown.Load() }

// Close stops background work and saves each live session's sequence
// number in its record, where the next node to number the session's audio
// finds it. It does not end sessions: they stay persisted for the next
// start.
func (s *Service) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range s.held() {
		l.stopTimers()
		next := l.room.NextSeq()
		_, err := s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
			if r.Ended() || r.NextSeq == next {
				return errAlreadyEnded
			}
			r.NextSeq = next
			return nil
		})
		if err != nil && !errors.Is(err, errAlreadyEnded) {
			s.log.Warn("could not save the sequence number", "sessionId", l.id, "err", err)
		}
	}
	// Last, the events of the shutdown go out; a forwarder never started
	// has nothing to stop.
	started := true
	s.startOnce.Do(func() { started = false })
	if started {
		s.fwd.close()
	}
}

// every runs fn every d of clock until Close, each run bounded by d (at
// least 5 s).
func (s *Service) every(clock clockwork.Clock, d time.Duration, fn func(context.Context)) {
	t := clock.NewTicker(d)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.Chan():
				ctx, cancel := context.WithTimeout(context.Background(), max(d, 5*time.Second))
				fn(ctx)
				cancel()
			}
		}
	}()
}

// Sweep ends every live session past its expiry and removes ended records
// past the retention period. Reads check expiry too; the sweeper makes sure
// a session nobody reads still ends and its record goes.
func (s *Service) Sweep(ctx context.Context) {
	s.sweepSpeakers(ctx)
	n, err := s.store.Sweep(ctx, s.clock.Now().Add(-s.cfg.EndedRetention))
	if err != nil {
		s.log.Warn("sweep failed", "err", err)
	} else if n > 0 {
		s.log.Debug("swept ended sessions", "count", n)
	}
}

// sweepSpeakers ends sessions whose speaker's grace ran out, and starts the
// grace of speakers whose node died: no session outlives its speaker because
// the node that would have timed it out is gone.
func (s *Service) sweepSpeakers(ctx context.Context) {
	recs, err := s.store.List(ctx)
	if err != nil {
		s.log.Warn("sweep: list sessions", "err", err)
		return
	}
	now := s.clock.Now()
	for _, rec := range recs {
		if reason := s.expiredReason(rec, now); reason != "" {
			_, _ = s.get(ctx, rec.ID)
			continue
		}
		if !rec.GraceUntil.IsZero() {
			if !now.Before(rec.GraceUntil) {
				s.graceExpired(ctx, rec.ID)
			}
			continue
		}
		if !rec.SpeakerLive || rec.SpeakerNode == "" || rec.SpeakerNode == s.node {
			continue
		}
		if alive, err := s.presence.Alive(ctx, rec.SpeakerNode); err != nil || alive {
			continue
		}
		s.adoptDroppedSpeaker(ctx, rec, s.find(rec.ID))
	}
}

// adoptDroppedSpeaker starts the grace of a speaker whose node died; l is
// this node's live side of the session, nil if it holds none.
func (s *Service) adoptDroppedSpeaker(ctx context.Context, rec *pentecost.Session, l *liveSession) {
	dead := rec.SpeakerNode
	now := s.clock.Now()
	until := now.Add(s.cfg.SpeakerGrace)
	updated, err := s.store.Update(ctx, rec.ID, func(r *pentecost.Session) error {
		if r.Ended() || r.SpeakerNode != dead || !r.GraceUntil.IsZero() {
			return errNotDue
		}
		r.GraceUntil = until
		return nil
	})
	if err != nil {
		return
	}
	s.log.Info("speaker's node is gone: grace started", "sessionId", rec.ID)
	secs := int(s.cfg.SpeakerGrace / time.Second)
	msg := &protocol.SpeakerPresence{
		Header: protocol.H(protocol.TypeSpeakerDisconnected, now), SessionID: rec.ID, GraceSeconds: &secs,
	}
	if l == nil {
		s.emit(rec.ID, evListener, protocol.Marshal(msg))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setRecordLocked(updated)
	l.primary = nil
	l.armGraceLocked(until)
	l.toListenersLocked(msg)
}

// Ping reports whether the state store answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// unavailable wraps a store failure as SERVICE_UNAVAILABLE, so clients retry
// instead of seeing an internal error.
func unavailable(err error) error {
	if e := pentecost.AsError(err); e != nil {
		return err
	}
	return pentecost.Errorf(pentecost.ErrServiceUnavailable, "session state is temporarily unavailable").
		With("retryAfter", 5).Wrap(err)
}

// get reads a session, checking expiry on the way: a session past its maximum
// duration or start timeout is ended now, whoever reads it. Deleted sessions,
// and ended ones past retention, are not found.
func (s *Service) get(ctx context.Context, id string) (*pentecost.Session, error) {
	rec, err := s.store.Get(ctx, id)
	if err != nil {
		if pentecost.ErrorCode(err) == pentecost.ErrSessionNotFound {
			return nil, pentecost.NotFound(id)
		}
		return nil, unavailable(err)
	}
	now := s.clock.Now()
	if rec.Deleted || (rec.Ended() && now.Sub(rec.EndedAt) >= s.cfg.EndedRetention) {
		return nil, pentecost.NotFound(id)
	}
	if reason := s.expiredReason(rec, now); reason != "" {
		if ended, err := s.end(ctx, id, reason, ""); err == nil {
			return ended, nil
		}
		rec.Status = pentecost.StatusEnded
	}
	return rec, nil
}

func (s *Service) expiredReason(rec *pentecost.Session, now time.Time) string {
	if rec.Ended() {
		return ""
	}
	if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
		return pentecost.EndExpired
	}
	if rec.SpeakerAttachedAt.IsZero() && s.cfg.StartTimeout > 0 && !now.Before(rec.CreatedAt.Add(s.cfg.StartTimeout)) {
		return pentecost.EndExpired
	}
	return ""
}

// open reads session id, which must not be ended, and returns this node's
// live side of it, taking the session up if this node holds none yet.
func (s *Service) open(ctx context.Context, id string) (*liveSession, error) {
	// Writes to the live side between the read below and the sync after
	// it are newer than the read: gen tells them apart.
	var gen uint64
	before := s.find(id)
	if before != nil {
		gen = before.gen.Load()
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Ended() {
		return nil, pentecost.NotFound(id).With("status", "ended")
	}
	l := s.liveFor(rec)
	if l == before {
		// Other nodes change the record too; the read just made is the
		// truth unless this node changed it since.
		l.mu.Lock()
		if l.gen.Load() == gen {
			l.setRecordLocked(rec)
		}
		l.mu.Unlock()
	}
	return l, nil
}

// liveFor returns this node's live side of the session rec describes,
// creating it from rec if there is none.
func (s *Service) liveFor(rec *pentecost.Session) *liveSession {
	if l := s.find(rec.ID); l != nil {
		<-l.ready
		return l
	}
	s.mu.Lock()
	if l := s.sessions[rec.ID]; l != nil {
		s.mu.Unlock()
		<-l.ready
		return l
	}
	l := s.newLiveLocked(rec)
	s.sessions[rec.ID] = l
	s.mu.Unlock()
	l.follow()
	return l
}

// find returns this node's live side of session id, or nil.
func (s *Service) find(id string) *liveSession {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[id]
}

// held lists the sessions this node holds a live side of.
func (s *Service) held() []*liveSession {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*liveSession, 0, len(s.sessions))
	for _, l := range s.sessions {
		out = append(out, l)
	}
	return out
}

// drop forgets this node's live side of a session and stops following its
// topics.
func (s *Service) drop(l *liveSession) {
	s.mu.Lock()
	if s.sessions[l.id] == l {
		delete(s.sessions, l.id)
	}
	if s.byStream[l.streamID] == l {
		delete(s.byStream, l.streamID)
	}
	s.mu.Unlock()
	l.unfollow()
}

type nopObserver struct{}

func (nopObserver) SessionCreated(time.Duration)        {}
func (nopObserver) ListenerJoined(time.Duration)        {}
func (nopObserver) SessionEnded(string)                 {}
func (nopObserver) GraceOutcome(string)                 {}
func (nopObserver) AudioIn(int)                         {}
func (nopObserver) AudioDropped(int)                    {}
func (nopObserver) Refreshed(string)                    {}
func (nopObserver) RateLimited(string)                  {}
func (nopObserver) Processors(int)                      {}
func (nopObserver) LanguagePairs(string, int, int)      {}
func (nopObserver) ProcessingLag(string, time.Duration) {}
func (nopObserver) Transcoded(string, int)              {}
func (nopObserver) BusDropped(string, int)              {}
func (nopObserver) BusUp(bool)                          {}
func (nopObserver) BusAudioMissing(int)                 {}
func (nopObserver) RecordReasserted(string)             {}
