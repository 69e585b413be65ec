// Package bolt is the embedded, single-node pentecost.SessionStore: one
// bbolt file under the data directory, so a restart loses no session.
package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for the file lock.
const DefaultTimeout = time.Second

// Start-up failures an operator must act on; Open's errors wrap one of them
// (test with errors.Is) and say what to do.
var (
	// ErrCorrupt: the file exists but is not a readable session database.
	ErrCorrupt = errors.New("not a valid session database")
	// ErrLocked: another process has the file open.
	ErrLocked = errors.New("database file is locked by another process")
	// ErrSchema: the file was written by a newer, incompatible version.
	ErrSchema = errors.New("unsupported schema version")
	// ErrUnwritable: the file or its directory cannot be created or written.
	ErrUnwritable = errors.New("cannot create or write the database file")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout is how long to wait for another process to release the file
	// lock; zero or negative means DefaultTimeout.
	Timeout time.Duration
	// Clock is accepted for symmetry with the other stores. The bolt store
	// reads no time itself: every time in a record is set by the caller.
	Clock clockwork.Clock
	// Logger receives start-up information; nil discards it.
	Logger *slog.Logger
}

// Store is a SessionStore backed by one bbolt file. It is safe for
// concurrent use; bbolt serializes writers and lets readers run alongside.
type Store struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the store at path, creating its directory if needed.
// It never starts empty over an existing file it cannot read: a corrupt,
// foreign or newer file is an error that names the file and what to do.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("bolt: open: empty path")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	size, err := preflight(path)
	if err != nil {
		return nil, err
	}
	if size > 0 {
		if err := inspect(path, size, opts.Timeout); err != nil {
			return nil, explain(path, opts.Timeout, err)
		}
	}
	db, err := openDB(path, &bbolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, explain(path, opts.Timeout, err)
	}
	n, err := prepare(db, path)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	log.Info("session store opened", "path", path, "records", n, "schema", schemaVersion)
	return &Store{db: db, path: path, log: log}, nil
}

// preflight turns the usual set-up mistakes into messages that say what is
// wrong with which path, before bbolt reports them as a bare errno. It
// returns the size of the existing file, or 0.
func preflight(path string) (int64, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("bolt: open %s: %w: cannot create data directory %s: %w", path, ErrUnwritable, dir, err)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("bolt: open %s: %w: %w", path, ErrUnwritable, err)
	case fi.IsDir():
		return 0, fmt.Errorf("bolt: open %s: %w: the path is a directory; give the path of a file inside it", path, ErrUnwritable)
	case !fi.Mode().IsRegular():
		return 0, fmt.Errorf("bolt: open %s: %w: not a regular file (%s)", path, ErrUnwritable, fi.Mode().Type())
	}
	return fi.Size(), nil
}

// explain maps bbolt's open errors to ones an operator can act on.
func explain(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, ErrCorrupt),
		errors.Is(err, berrors.ErrInvalid),
		errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum),
		// bbolt has no sentinel for a file shorter than its two meta pages.
		strings.HasPrefix(err.Error(), "file size too small"):
		return corrupt(path, err)
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("bolt: open %s: %w (waited %s for it); stop the other server, or give this one another data directory",
			path, ErrLocked, timeout)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("bolt: open %s: %w: %w", path, ErrUnwritable, err)
	}
	return fmt.Errorf("bolt: open %s: %w", path, err)
}

func corrupt(path string, cause error) error {
	if !errors.Is(cause, ErrCorrupt) {
		cause = fmt.Errorf("%w: %w", ErrCorrupt, cause)
	}
	return fmt.Errorf("bolt: open %s: the file is %w; move it aside (e.g. mv %s %s.corrupt) and start again to begin with an empty store",
		path, cause, path, path)
}
