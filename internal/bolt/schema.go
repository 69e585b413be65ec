package bolt

import (
	"errors"
	"fmt"
	"strconv"

	bbolt "go.etcd.io/bbolt"
)

// The file layout. The meta bucket names the format and its version so that
// a later change of record encoding is detected instead of misread.
var (
	metaBucket     = []byte("meta")
	sessionsBucket = []byte("sessions")
	formatKey      = []byte("format")
	schemaKey      = []byte("schema")
)

const (
	formatName = "pentecost-sessions"
	// schemaVersion is the version this build writes and the newest it
	// reads. Bump it when the record encoding changes incompatibly, and
	// teach prepare to migrate older files.
	schemaVersion = 1
)

// prepare initializes a new file or checks that an existing one is a session
// store this build can read. It returns the number of records kept.
func prepare(db *bbolt.DB, path string) (int, error) {
	var n int
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = checkSchema(tx)
		return err
	})
	if errors.Is(err, errEmpty) {
		err = db.Update(initialize)
	}
	var schemaErr *newerSchemaError
	switch {
	case errors.As(err, &schemaErr):
		return 0, fmt.Errorf("bolt: open %s: %w %d: the file was written by a newer pentecost "+
			"(this build reads up to schema %d); run that version, or move the file aside "+
			"(e.g. mv %s %s.schema%d) to start with an empty store",
			path, ErrSchema, schemaErr.version, schemaVersion, path, path, schemaErr.version)
	case errors.Is(err, ErrCorrupt):
		return 0, corrupt(path, err)
	case err != nil:
		return 0, explain(path, 0, err)
	}
	return n, nil
}

// errEmpty reports a file with no buckets at all: new, or created by a run
// that stopped before its first write.
var errEmpty = errors.New("empty database")

type newerSchemaError struct{ version uint64 }

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("schema %d is newer than %d", e.version, schemaVersion)
}

func checkSchema(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(metaBucket)
	if meta == nil {
		var names []string
		_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
		if len(names) > 0 {
			return 0, fmt.Errorf("%w: a bbolt file without pentecost's meta bucket (it holds %q)", ErrCorrupt, names)
		}
		return 0, errEmpty
	}
	if f := string(meta.Get(formatKey)); f != formatName {
		return 0, fmt.Errorf("%w: format %q, want %q", ErrCorrupt, f, formatName)
	}
	raw := string(meta.Get(schemaKey))
	v, err := strconv.ParseUint(raw, 10, 32)
	switch {
	case err != nil || v == 0:
		return 0, fmt.Errorf("%w: schema version %q is not a positive number", ErrCorrupt, raw)
	case v > schemaVersion:
		return 0, &newerSchemaError{version: v}
	}
	b := tx.Bucket(sessionsBucket)
	if b == nil {
		return 0, fmt.Errorf("%w: the %s bucket is missing", ErrCorrupt, sessionsBucket)
	}
	return b.Stats().KeyN, nil
}

func initialize(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket(metaBucket)
	if err != nil {
		return err
	}
	if err := meta.Put(formatKey, []byte(formatName)); err != nil {
		return err
	}
	if err := meta.Put(schemaKey, []byte(strconv.Itoa(schemaVersion))); err != nil {
		return err
	}
	_, err = tx.CreateBucket(sessionsBucket)
	return err
}
