package bolt

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// bbolt trusts a file's meta pages. A truncated file makes it read pages past
// the end of the mapping, which faults (SIGBUS) instead of failing, and
// damaged pages make it panic. Neither must crash the server at start-up, or
// worse, mid-broadcast; so an existing file is first opened read-only and
// read end to end with faults turned into errors, and only then opened for
// writing.

// inspect reads an existing, non-empty file without writing to it.
func inspect(path string, size int64, timeout time.Duration) error {
	db, err := openDB(path, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return err
	}
	// A panic inside View has already rolled the transaction back, so
	// Close can still take bbolt's locks and unmap the file.
	defer db.Close()
	return guard(func() error { return db.View(func(tx *bbolt.Tx) error { return walk(tx, size) }) })
}

// walk reads every page the database references.
func walk(tx *bbolt.Tx, fileSize int64) error {
	if need := tx.Size(); need > fileSize {
		return fmt.Errorf("%w: truncated: the database needs %d bytes but the file has %d", ErrCorrupt, need, fileSize)
	}
	// The checksum is only there so that every byte is really read.
	var sum byte
	return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
		return b.ForEach(func(_, v []byte) error {
			for _, c := range v {
				sum ^= c
			}
			return nil
		})
	})
}

// guard runs fn with memory faults turned into panics and panics into
// ErrCorrupt.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (reading it failed: %v)", ErrCorrupt, r)
		}
	}()
	return fn()
}

// openDB is bbolt.Open under guard. A panic inside Open loses the *DB, so
// the file is caught on its way in to release the lock: closing the
// descriptor is not enough, as bbolt's mapping of the file keeps the lock
// alive. The mapping itself leaks, once, on the way to a start-up error.
func openDB(path string, opts *bbolt.Options) (*bbolt.DB, error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bbolt.DB
	err := guard(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, opts)
		return err
	})
	if db == nil && file != nil && err != nil {
		// Harmless when bbolt already closed it after a plain error.
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		_ = file.Close()
	}
	return db, err
}
