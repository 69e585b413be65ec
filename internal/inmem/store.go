package inmem

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pentecost/pentecost"
)

// ErrStoreClosed is returned by a closed Store.
var ErrStoreClosed = errors.New("inmem: store is closed")

// Store is a pentecost.SessionStore in memory: nothing survives the
// process. The tests of package sessions use it; a node keeps its records
// in bolt or Redis.
type Store struct {
	mu     sync.Mutex
	recs   map[string]*pentecost.Session
	closed bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{recs: map[string]*pentecost.Session{}} }

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return ErrStoreClosed
	}
	return nil
}

// Create implements pentecost.SessionStore.
func (s *Store) Create(ctx context.Context, r *pentecost.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, ok := s.recs[r.ID]; ok {
		return pentecost.Errorf(pentecost.ErrSessionIDTaken, "session id %s is taken", r.ID)
	}
	s.recs[r.ID] = r.Clone()
	return nil
}

// lookupLocked returns a copy of record id.
func (s *Store) lookupLocked(ctx context.Context, id string) (*pentecost.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	r, ok := s.recs[id]
	if !ok {
		return nil, pentecost.NotFound(id)
	}
	return r.Clone(), nil
}

// Get implements pentecost.SessionStore.
func (s *Store) Get(ctx context.Context, id string) (*pentecost.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(ctx, id)
}

// Update implements pentecost.SessionStore.
func (s *Store) Update(ctx context.Context, id string, fn func(*pentecost.Session) error) (*pentecost.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.lookupLocked(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	c.ID = id
	s.recs[id] = c
	return c.Clone(), nil
}

// List implements pentecost.SessionStore.
func (s *Store) List(ctx context.Context) ([]*pentecost.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []*pentecost.Session
	for _, r := range s.recs {
		if !r.Ended() {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}

// Sweep implements pentecost.SessionStore.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n := 0
	for id, r := range s.recs {
		if r.Ended() && r.EndedAt.Before(cutoff) {
			delete(s.recs, id)
			n++
		}
	}
	return n, nil
}

// Flush forgets every record, as a Redis restarted without persistence
// does.
func (s *Store) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = map[string]*pentecost.Session{}
}

// Ping implements pentecost.SessionStore.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(ctx)
}

// Close makes every later call fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
