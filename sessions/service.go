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
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
)

// Config holds the rules' knobs; every duration is configurable so tests run
// hours of session life in milliseconds.
type Config struct {
	MaxListeners    int           // per session; 0 = no cap
	SpeakerGrace    time.Duration // reconnect window after a speaker's unexpected drop
	StartTimeout    time.Duration // a session never attached by its speaker ends after this
	MaxDuration     time.Duration // 0 = unlimited
	EndedRetention  time.Duration // ended sessions read as ended, and keep their ID, this long
	StatusInterval  time.Duration // periodic sessionStatus to the speaker
	StatusMinGap    time.Duration // listener-count pushes at most this often
	RefreshOverlap  time.Duration // the old connection of a refresh is closed after this
	SweepInterval   time.Duration
	SessionsPerHour int // per user; 0 = unlimited
	Queue           hub.QueueOptions
}

// DefaultConfig returns the defaults of docs/protocol.md, "Limits and rate limits".
func DefaultConfig() Config {
	return Config{
		MaxListeners:    500,
		SpeakerGrace:    60 * time.Second,
		StartTimeout:    24 * time.Hour,
		MaxDuration:     24 * time.Hour,
		EndedRetention:  24 * time.Hour,
		StatusInterval:  30 * time.Second,
		StatusMinGap:    time.Second,
		RefreshOverlap:  2 * time.Second,
		SweepInterval:   time.Minute,
		SessionsPerHour: 50,
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
}

// Service applies the session rules. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store pentecost.SessionStore
	clock clockwork.Clock
	log   *slog.Logger
	ids   sessionid.Generator
	limit Limiter
	obs   Observer

	cluster Cluster
	origin  [originLen]byte

	mu         sync.RWMutex
	live       map[string]*live
	streams    map[uint16]*live
	nextStream uint32

	procMu sync.Mutex
	procs  []*Processor // in attach order: the first that serves a language gets it

	stop chan struct{}
	wg   sync.WaitGroup

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
	// Cluster is nil on a single node.
	Cluster Cluster
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
	if cfg.StatusMinGap <= 0 {
		cfg.StatusMinGap = time.Second
	}
	if cfg.EndedRetention <= 0 {
		cfg.EndedRetention = 24 * time.Hour
	}
	svc := &Service{
		cluster: o.Cluster,
		cfg:     cfg,
		store:   o.Store,
		clock:   o.Clock,
		log:     o.Logger,
		ids:     o.IDs,
		limit:   o.Limiter,
		obs:     o.Observer,
		live:    make(map[string]*live),
		streams: make(map[uint16]*live),
		stop:    make(chan struct{}),
	}
	if o.Cluster != nil {
		if b, err := hex.DecodeString(o.Cluster.Node()); err == nil && len(b) == originLen {
			copy(svc.origin[:], b)
		}
	} else {
		_, _ = rand.Read(svc.origin[:])
	}
	return svc
}

// node is this node's ID in session records ("" on a single node).
func (s *Service) node() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.Node()
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Clock returns the service's clock.
func (s *Service) Clock() clockwork.Clock { return s.clock }

// Start resumes every persisted live session (a restarted node must keep
// them: speakers re-attach to the same ID, listeners re-join) and starts the
// sweeper.
func (s *Service) Start(ctx context.Context) error {
	// In a cluster the sessions live on in the other nodes and the store;
	// a node takes one up when a connection for it arrives.
	if s.cluster == nil {
		recs, err := s.store.List(ctx)
		if err != nil {
			return fmt.Errorf("sessions: resume: %w", err)
		}
		for _, rec := range recs {
			l, err := s.liveFor(ctx, rec)
			if err != nil {
				s.log.Warn("could not resume session", "sessionId", rec.ID, "err", err)
				continue
			}
			if rec.SpeakerLive && rec.GraceUntil.IsZero() {
				// A speaker was attached when this node stopped: that
				// speaker is gone, which is a drop like any other, so it
				// gets the grace to come back.
				l.speakerGone()
			}
		}
		if len(recs) > 0 {
			s.log.Info("resumed sessions", "count", len(recs))
		}
	}
	if s.cfg.SweepInterval > 0 {
		s.wg.Add(1)
		go s.sweepLoop()
	}
	return nil
}

// BeginShutdown marks the node as draining (see shuttingDown).
func (s *Service) BeginShutdown() { s.shuttingDown.Store(true) }

// Close stops background work and saves each live session's sequence
// number. It does not end sessions: they stay persisted for the next start.
func (s *Service) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.wg.Wait()
	for _, l := range s.lives() {
		l.stopTimers()
		if s.cluster != nil {
			continue // the sequence lives in Redis
		}
		next := l.room.NextSeq()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
			if r.Ended() {
				return errAlreadyEnded
			}
			r.NextSeq = next
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, errAlreadyEnded) {
			s.log.Warn("could not save the sequence number", "sessionId", l.id, "err", err)
		}
	}
}

func (s *Service) sweepLoop() {
	defer s.wg.Done()
	t := s.clock.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.Chan():
			s.Sweep(context.Background())
		}
	}
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
// grace of speakers whose node died (cluster): no session outlives its
// speaker because the node that would have timed it out is gone.
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
		if s.cluster == nil || !rec.SpeakerLive || rec.SpeakerNode == "" || rec.SpeakerNode == s.node() {
			continue
		}
		if alive, err := s.cluster.Alive(ctx, rec.SpeakerNode); err != nil || alive {
			continue
		}
		s.adoptDroppedSpeaker(ctx, rec)
	}
}

// adoptDroppedSpeaker starts the grace of a speaker whose node died.
func (s *Service) adoptDroppedSpeaker(ctx context.Context, rec *pentecost.Session) {
	dead := rec.SpeakerNode
	now := s.clock.Now()
	until := now.Add(s.cfg.SpeakerGrace)
	_, err := s.store.Update(ctx, rec.ID, func(r *pentecost.Session) error {
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
	if l := s.lookupLive(rec.ID); l != nil {
		l.mu.Lock()
		l.primary = nil
		l.armGraceLocked(until)
		l.toListenersLocked(msg)
		l.mu.Unlock()
		return
	}
	s.emit(rec.ID, evListener, protocol.Marshal(msg))
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

// getLive reads a session that must be live (not ended) and returns its live
// state, creating it if this node has none yet.
func (s *Service) getLive(ctx context.Context, id string) (*live, error) {
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Ended() {
		return nil, pentecost.NotFound(id).With("status", "ended")
	}
	return s.liveOf(ctx, rec)
}

// liveOf returns the live state of a record just read and not ended.
func (s *Service) liveOf(ctx context.Context, rec *pentecost.Session) (*live, error) {
	l, err := s.liveFor(ctx, rec)
	if err == nil && s.cluster != nil {
		// Other nodes change the record; the read just made is the truth.
		l.mu.Lock()
		l.rec = rec
		l.gated.Store(rec.Broadcast.IsPaused || rec.Broadcast.IsMuted)
		l.mu.Unlock()
	}
	return l, err
}

func (s *Service) liveFor(_ context.Context, rec *pentecost.Session) (*live, error) {
	s.mu.RLock()
	l := s.live[rec.ID]
	s.mu.RUnlock()
	if l != nil {
		return l, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l = s.live[rec.ID]; l != nil {
		return l, nil
	}
	l = s.newLive(rec)
	s.live[rec.ID] = l
	return l, nil
}

func (s *Service) lookupLive(id string) *live {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live[id]
}

func (s *Service) dropLive(l *live) {
	s.mu.Lock()
	if s.live[l.id] == l {
		delete(s.live, l.id)
	}
	if s.streams[l.streamID] == l {
		delete(s.streams, l.streamID)
	}
	s.mu.Unlock()
	s.unsubscribe(controlTopic(l.id))
	s.unsubscribe(audioTopic(l.id))
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
