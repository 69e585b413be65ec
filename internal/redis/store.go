package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost"
)

// Store is the session store on Redis. A record is a JSON string under
// session:{id}; it expires by itself RecordTTL after the session's end (or
// its maximum life), so Redis is the sweeper. The set sessions:active lists
// the records that are not ended, for List.
type Store struct {
	c      *Client
	closed atomic.Bool
	// Retention is how long an ended record is kept (its ID stays reserved).
	Retention time.Duration
	// MaxLife bounds an active record's life when it has no ExpiresAt.
	MaxLife time.Duration
}

// NewStore returns a store on c.
func NewStore(c *Client) *Store {
	return &Store{c: c, Retention: 24 * time.Hour, MaxLife: 30 * 24 * time.Hour}
}

func (s *Store) recKey(id string) string { return s.c.key("session", id) }

var errClosed = errors.New("redis: store is closed")

func (s *Store) check() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}
func (s *Store) activeKey() string { return s.c.key("sessions", "active") }

// expiry is when Redis may forget the record.
func (s *Store) expiry(r *pentecost.Session) time.Time {
	switch {
	case r.Ended():
		at := r.EndedAt
		if at.IsZero() {
			at = r.UpdatedAt
		}
		return at.Add(s.Retention)
	case !r.ExpiresAt.IsZero():
		return r.ExpiresAt.Add(s.Retention)
	default:
		return r.CreatedAt.Add(s.MaxLife)
	}
}

func (s *Store) ttl(r *pentecost.Session) time.Duration {
	d := time.Until(s.expiry(r))
	if d < time.Minute {
		// The record's times come from the node's clock (fake in tests);
		// never let Redis drop a record sooner than a minute from now.
		d = time.Minute
	}
	return d
}

// Create stores a new session unless its ID is taken.
func (s *Store) Create(ctx context.Context, r *pentecost.Session) error {
	if err := s.check(); err != nil {
		return err
	}

	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", r.ID, err)
	}
	ok, err := s.c.rdb.SetNX(ctx, s.recKey(r.ID), b, s.ttl(r)).Result()
	if err != nil {
		return fmt.Errorf("redis: create %s: %w", r.ID, err)
	}
	if !ok {
		return pentecost.Errorf(pentecost.ErrSessionIDTaken, "session id %s is taken", r.ID)
	}
	if !r.Ended() {
		if err := s.c.rdb.SAdd(ctx, s.activeKey(), r.ID).Err(); err != nil {
			return fmt.Errorf("redis: index %s: %w", r.ID, err)
		}
	}
	return nil
}

func decode(id string, b []byte) (*pentecost.Session, error) {
	var r pentecost.Session
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("redis: decode session %s: %w", id, err)
	}
	return &r, nil
}

// Get returns a record or SESSION_NOT_FOUND.
func (s *Store) Get(ctx context.Context, id string) (*pentecost.Session, error) {
	if err := s.check(); err != nil {
		return nil, err
	}

	b, err := s.c.rdb.Get(ctx, s.recKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, pentecost.NotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get %s: %w", id, err)
	}
	return decode(id, b)
}

// Update applies fn atomically with an optimistic transaction, retrying
// when another node changed the record in between.
func (s *Store) Update(ctx context.Context, id string, fn func(*pentecost.Session) error) (*pentecost.Session, error) {
	if err := s.check(); err != nil {
		return nil, err
	}

	key := s.recKey(id)
	var out *pentecost.Session
	txf := func(tx *goredis.Tx) error {
		b, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, goredis.Nil) {
			return pentecost.NotFound(id)
		}
		if err != nil {
			return err
		}
		r, err := decode(id, b)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return &fnError{err}
		}
		if r.ID != id {
			return fmt.Errorf("redis: update %s: fn changed the session id", id)
		}
		nb, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, key, nb, s.ttl(r))
			if r.Ended() {
				p.SRem(ctx, s.activeKey(), id)
			} else {
				p.SAdd(ctx, s.activeKey(), id)
			}
			return nil
		})
		out = r
		return err
	}
	for attempt := 0; attempt < 50; attempt++ {
		err := s.c.rdb.Watch(ctx, txf, key)
		var fe *fnError
		switch {
		case err == nil:
			return out, nil
		case errors.As(err, &fe):
			return nil, fe.err
		case errors.Is(err, goredis.TxFailedErr):
			continue
		case pentecost.AsError(err) != nil:
			return nil, err
		default:
			return nil, fmt.Errorf("redis: update %s: %w", id, err)
		}
	}
	return nil, fmt.Errorf("redis: update %s: too much contention", id)
}

// fnError carries the caller's error out of the transaction unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// List returns the records that are not ended.
func (s *Store) List(ctx context.Context) ([]*pentecost.Session, error) {
	if err := s.check(); err != nil {
		return nil, err
	}

	ids, err := s.c.rdb.SMembers(ctx, s.activeKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.recKey(id)
	}
	vals, err := s.c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list: %w", err)
	}
	var out []*pentecost.Session
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			// Expired meanwhile: drop it from the index.
			s.c.rdb.SRem(ctx, s.activeKey(), ids[i])
			continue
		}
		r, err := decode(ids[i], []byte(str))
		if err != nil {
			return nil, err
		}
		if !r.Ended() {
			out = append(out, r)
		}
	}
	return out, nil
}

// Sweep removes ended records that ended before cutoff. Redis expires them
// by itself; this makes the cutoff exact for callers with their own clock.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}

	n := 0
	var cursor uint64
	pattern := s.recKey("*")
	for {
		keys, next, err := s.c.rdb.Scan(ctx, cursor, pattern, 200).Result()
		if err != nil {
			return n, fmt.Errorf("redis: sweep: %w", err)
		}
		for _, k := range keys {
			b, err := s.c.rdb.Get(ctx, k).Bytes()
			if err != nil {
				continue
			}
			var r pentecost.Session
			if json.Unmarshal(b, &r) != nil {
				continue
			}
			if r.Ended() && r.EndedAt.Before(cutoff) {
				if s.c.rdb.Del(ctx, k).Val() == 1 {
					n++
				}
			}
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.c.Ping(ctx)
}

// Close makes the store refuse every later call; the Client is shared and
// closed by its owner.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
