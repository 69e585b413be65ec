package bolt

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/storetest"
	bbolt "go.etcd.io/bbolt"
)

// wantOpenError opens path, expects an error wrapping kind whose message
// names the path and contains every hint, and returns it.
func wantOpenError(t *testing.T, path string, opts Options, kind error, hints ...string) error {
	t.Helper()
	s, err := Open(path, opts)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded, want %v", path, kind)
	}
	if !errors.Is(err, kind) {
		t.Errorf("Open(%s) = %v, want it to wrap %q", path, err, kind)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) {
		t.Errorf("error %q does not name the path", msg)
	}
	for _, h := range hints {
		if !strings.Contains(msg, h) {
			t.Errorf("error %q does not say %q", msg, h)
		}
	}
	return err
}

// wantUntouched checks that a failed Open left the file as it was: never
// start empty over a file the operator may still need.
func wantUntouched(t *testing.T, path string, before []byte) {
	t.Helper()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Open changed %s (%d bytes before, %d after)", path, len(before), len(after))
	}
}

func TestOpenCreatesDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %s, want %s", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v, %v; want mode 0600", fi, err)
	}
}

func TestOpenEmptyFile(t *testing.T) {
	// A zero-byte file holds nothing to lose, so it is initialized.
	path := filepath.Join(t.TempDir(), "sessions.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestOpenPathIsDirectory(t *testing.T) {
	wantOpenError(t, t.TempDir(), Options{}, ErrUnwritable, "is a directory")
}

func TestOpenUnderRegularFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, filepath.Join(file, "sessions.db"), Options{}, ErrUnwritable, "cannot create data directory", "not a directory")
}

func TestOpenReadOnlyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skip("a 0500 directory is writable here (running as root?); TestOpenUnderRegularFile covers an uncreatable file")
	}
	wantOpenError(t, filepath.Join(dir, "sessions.db"), Options{}, ErrUnwritable, "permission denied")
}

func TestOpenGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for name, content := range map[string][]byte{
		"random 64KiB": random(64 << 10),
		"random 100B":  random(100),
		"random 5000B": random(5000),
		"zeros 32KiB":  make([]byte, 32<<10),
		"text":         []byte("sessions:\n  - golden-eagle-427\n"),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessions.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			wantOpenError(t, path, Options{}, ErrCorrupt, "not a valid session database", "move it aside")
			wantUntouched(t, path, content)
		})
	}
}

// filledDB writes a database with enough records to span many pages and
// returns its path and the size its meta pages say it needs.
func filledDB(t *testing.T) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		sess := storetest.Sample("golden-eagle-" + strconv.Itoa(100+i))
		sess.OwnerID = strings.Repeat("o", 200) // longer records, more pages
		if err := s.Create(t.Context(), sess); err != nil {
			t.Fatal(err)
		}
	}
	var need int64
	_ = s.db.View(func(tx *bbolt.Tx) error { need = tx.Size(); return nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, need
}

func TestOpenTruncated(t *testing.T) {
	path, need := filledDB(t)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if need < 16*4096 {
		t.Fatalf("test database needs only %d bytes; make it bigger", need)
	}
	// Cuts inside the first page, between the meta pages, just past them,
	// in the middle, and one page short.
	for _, size := range []int64{3000, 4096, 4096 + 2000, 8192, 12288, need / 2, need - 4096} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			cut := filepath.Join(t.TempDir(), "sessions.db")
			if err := os.WriteFile(cut, full[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			wantOpenError(t, cut, Options{}, ErrCorrupt, "not a valid session database", "move it aside")
			wantUntouched(t, cut, full[:size])
			// The failed attempt released the file: trying again gives the
			// same answer, not a lock timeout.
			wantOpenError(t, cut, Options{Timeout: 100 * time.Millisecond}, ErrCorrupt)
		})
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file, so a second open in this process
	// conflicts just as another process would.
	const timeout = 200 * time.Millisecond
	start := time.Now()
	wantOpenError(t, path, Options{Timeout: timeout}, ErrLocked, "another process")
	// bbolt gives up one 50ms retry early.
	if waited := time.Since(start); waited < timeout/2 {
		t.Errorf("gave up after %v, long before the %v timeout", waited, timeout)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, Options{Timeout: timeout})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	second.Close()
}

// editMeta changes the meta bucket of a closed store's file.
func editMeta(t *testing.T, path, key, value string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(metaBucket).Put([]byte(key), []byte(value)) }); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSchema(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		kind       error
		hint       string
	}{
		{"schema", "2", ErrSchema, "newer"},
		{"schema", "0", ErrCorrupt, "schema version"},
		{"schema", "one", ErrCorrupt, "schema version"},
		{"format", "something-else", ErrCorrupt, "format"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			path, _ := filledDB(t)
			editMeta(t, path, tc.key, tc.value)
			before, _ := os.ReadFile(path)
			wantOpenError(t, path, Options{}, tc.kind, tc.hint, "move")
			wantUntouched(t, path, before)
		})
	}
}

func TestOpenForeignBoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)
	wantOpenError(t, path, Options{}, ErrCorrupt, "widgets", "move it aside")
	wantUntouched(t, path, before)
}

func TestOpenMissingSessionsBucket(t *testing.T) {
	path, _ := filledDB(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(sessionsBucket) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantOpenError(t, path, Options{}, ErrCorrupt, "sessions bucket is missing")
}

// TestOpenDamagedPages zeroes one page at a time, as a failing disk might.
// Open must either work (the page was free) or report ErrCorrupt; it must
// never crash, and a refused file must not stay locked.
func TestOpenDamagedPages(t *testing.T) {
	path, need := filledDB(t)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	refused := 0
	for page := int64(2); page < need/pageSize; page++ {
		damaged := bytes.Clone(full)
		clear(damaged[page*pageSize : (page+1)*pageSize])
		p := filepath.Join(t.TempDir(), "sessions.db")
		if err := os.WriteFile(p, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, Options{Timeout: 100 * time.Millisecond})
		if err == nil {
			// Whatever was readable at start-up stays readable.
			if _, err := s.List(t.Context()); err != nil && !strings.Contains(err.Error(), "golden-eagle-") {
				t.Errorf("page %d: List = %v", page, err)
			}
			s.Close()
			continue
		}
		refused++
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("page %d: Open = %v, want ErrCorrupt", page, err)
		}
		if _, err := Open(p, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("page %d: second Open = %v, want ErrCorrupt again (a lock left behind?)", page, err)
		}
	}
	if refused == 0 {
		t.Error("no damaged page was noticed")
	}
	t.Logf("%d of %d damaged pages refused", refused, need/pageSize-2)
}

func TestOpenLogs(t *testing.T) {
	path, _ := filledDB(t)
	var buf bytes.Buffer
	s, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out := buf.String(); !strings.Contains(out, "session store opened") || !strings.Contains(out, "records=300") {
		t.Errorf("log = %q; want the path and the record count", out)
	}
}
