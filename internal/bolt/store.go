package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pentecost/pentecost"
	bbolt "go.etcd.io/bbolt"
)

var _ pentecost.SessionStore = (*Store)(nil)

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Create stores sess unless its ID is in use by any record still kept, ended
// ones included; the check and the write are one transaction.
func (s *Store) Create(ctx context.Context, sess *pentecost.Session) error {
	if sess == nil || sess.ID == "" {
		return errors.New("bolt: create: session without an ID")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create %s: %w", sess.ID, err)
	}
	data, err := encode(sess)
	if err != nil {
		return fmt.Errorf("bolt: create: %w", err)
	}
	key := []byte(sess.ID)
	var taken bool
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(sessionsBucket)
		if b.Get(key) != nil {
			taken = true
			return nil
		}
		return b.Put(key, data)
	})
	if err != nil {
		return fmt.Errorf("bolt: create %s: %w", sess.ID, err)
	}
	if taken {
		return pentecost.Errorf(pentecost.ErrSessionIDTaken, "session ID %s is in use", sess.ID).With("sessionId", sess.ID)
	}
	return nil
}

// Get returns a copy of the record, ended ones included.
func (s *Store) Get(ctx context.Context, id string) (*pentecost.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: get %s: %w", id, err)
	}
	var sess *pentecost.Session
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket(sessionsBucket).Get([]byte(id))
		if data == nil {
			return nil
		}
		found = true
		var err error
		sess, err = decode(id, data)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("bolt: get %s: %w", id, err)
	case !found:
		return nil, pentecost.NotFound(id)
	}
	return sess, nil
}

// Update runs fn on a decoded copy of the record inside one write
// transaction, so concurrent updates of a record are applied one after the
// other. An error from fn aborts the transaction and is returned as is, so a
// caller's *pentecost.Error reaches the client unchanged.
func (s *Store) Update(ctx context.Context, id string, fn func(*pentecost.Session) error) (*pentecost.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: update %s: %w", id, err)
	}
	var (
		out    *pentecost.Session
		fnErr  error
		absent bool
	)
	key := []byte(id)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(sessionsBucket)
		data := b.Get(key)
		if data == nil {
			absent = true
			return nil
		}
		sess, err := decode(id, data)
		if err != nil {
			return err
		}
		if fnErr = fn(sess); fnErr != nil {
			return fnErr
		}
		// The key is the ID; letting fn change it would leave a record
		// that no Get can find under the name it carries.
		if sess.ID != id {
			return fmt.Errorf("the update changed the session ID to %q", sess.ID)
		}
		if data, err = encode(sess); err != nil {
			return err
		}
		out = sess.Clone()
		return b.Put(key, data)
	})
	switch {
	case fnErr != nil:
		return nil, fnErr
	case err != nil:
		return nil, fmt.Errorf("bolt: update %s: %w", id, err)
	case absent:
		return nil, pentecost.NotFound(id)
	}
	return out, nil
}

// List returns every record that has not ended, in ID order. A record that
// cannot be decoded fails the whole call: start-up recovery must not forget
// a live broadcast without anyone noticing.
func (s *Store) List(ctx context.Context) ([]*pentecost.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: list: %w", err)
	}
	var out []*pentecost.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(sessionsBucket).ForEach(func(k, v []byte) error {
			sess, err := decode(string(k), v)
			if err != nil {
				return err
			}
			if !sess.Ended() {
				out = append(out, sess)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list: %w", err)
	}
	return out, nil
}

// Sweep removes ended records whose EndedAt is before cutoff (an ended record
// without EndedAt counts as ended long ago) and returns how many it removed.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: sweep: %w", err)
	}
	var n int
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(sessionsBucket)
		var doomed [][]byte
		err := b.ForEach(func(k, v []byte) error {
			sess, err := decode(string(k), v)
			if err != nil {
				return err
			}
			if sess.Ended() && sess.EndedAt.Before(cutoff) {
				// Deleting while a cursor walks the bucket skips keys.
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep: %w", err)
	}
	if n > 0 {
		s.log.Debug("swept ended sessions", "count", n, "cutoff", cutoff)
	}
	return n, nil
}

// Ping reports whether the file is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(sessionsBucket) == nil {
			return errors.New("the sessions bucket is missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: ping %s: %w", s.path, err)
	}
	return nil
}

// Close releases the file and its lock. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
