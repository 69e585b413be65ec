package bolt

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/storetest"
	bbolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "data", "sessions.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pentecost.SessionStore { return openTemp(t) })
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []*pentecost.Session
	for i := range 40 {
		var sess *pentecost.Session
		id := fmt.Sprintf("faithful-shepherd-%d", 100+i)
		switch i % 3 {
		case 0:
			sess = storetest.Sample(id)
		case 1:
			sess = storetest.Active(id)
		default:
			sess = storetest.Ended(id, storetest.Base.Add(time.Duration(i)*time.Minute))
		}
		want = append(want, sess)
		if err := s.Create(t.Context(), sess); err != nil {
			t.Fatal(err)
		}
	}
	// Nanoseconds survive too, though the suite asks only for milliseconds.
	nano := storetest.Active("precise-star-123")
	nano.UpdatedAt = storetest.Base.Add(123456789 * time.Nanosecond)
	want = append(want, nano)
	if err := s.Create(t.Context(), nano); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for _, w := range want {
		got, err := s.Get(t.Context(), w.ID)
		if err != nil {
			t.Fatalf("after reopen: %v", err)
		}
		if d := storetest.Diff(w, got); d != "" {
			t.Errorf("after reopen, %s: %s", w.ID, d)
		}
	}
	live, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 28 { // 14 samples (paused) + 13 active + the nanosecond one
		t.Errorf("List after reopen: %d records, want 28", len(live))
	}
}

// putRaw writes bytes under a key, bypassing the store, as damage would.
func putRaw(t *testing.T, s *Store, bucket, key, value string) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(value)) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestUndecodableRecord(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.Create(t.Context(), storetest.Active("golden-eagle-100")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"garbage", "\x00\x01not json", "undecodable"},
		{"wrong type", `{"sessionId": 7}`, "undecodable"},
		{"other id", `{"sessionId": "golden-eagle-428"}`, "names session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const id = "golden-eagle-427"
			putRaw(t, s, "sessions", id, tc.value)
			check := func(op string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s = %v; want an error naming %s and saying %q", op, err, id, tc.want)
				}
				if pentecost.ErrorCode(err) == pentecost.ErrSessionNotFound {
					t.Errorf("%s reports a damaged record as not found", op)
				}
			}
			_, err := s.Get(t.Context(), id)
			check("Get", err)
			_, err = s.Update(t.Context(), id, func(*pentecost.Session) error { return nil })
			check("Update", err)
			_, err = s.List(t.Context())
			check("List", err)
			_, err = s.Sweep(t.Context(), storetest.Base)
			check("Sweep", err)
			// The good record is still readable, and the damaged ID stays taken.
			if _, err := s.Get(t.Context(), "golden-eagle-100"); err != nil {
				t.Errorf("Get of an intact record: %v", err)
			}
			if err := s.Create(t.Context(), storetest.Active(id)); pentecost.ErrorCode(err) != pentecost.ErrSessionIDTaken {
				t.Errorf("Create over a damaged record = %v, want SESSION_ID_TAKEN", err)
			}
		})
	}
}

func TestUpdateReturnsFnErrorUnchanged(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.Create(t.Context(), storetest.Active("golden-eagle-427")); err != nil {
		t.Fatal(err)
	}
	sentinel := pentecost.Errorf(pentecost.ErrForbidden, "not the owner")
	_, err := s.Update(t.Context(), "golden-eagle-427", func(*pentecost.Session) error { return sentinel })
	if err != sentinel {
		t.Errorf("Update = %#v, want fn's error itself", err)
	}
}

func TestUpdateMayNotChangeID(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.Create(t.Context(), storetest.Active("golden-eagle-427")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(t.Context(), "golden-eagle-427", func(cur *pentecost.Session) error {
		cur.ID = "golden-eagle-428"
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "golden-eagle-428") {
		t.Fatalf("Update changing the ID = %v, want an error", err)
	}
	if _, err := s.Get(t.Context(), "golden-eagle-427"); err != nil {
		t.Errorf("original record after a refused ID change: %v", err)
	}
}

func TestCreateRejectsNoID(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.Create(t.Context(), &pentecost.Session{}); err == nil {
		t.Error("Create without an ID succeeded")
	}
	if err := s.Create(t.Context(), nil); err == nil {
		t.Error("Create(nil) succeeded")
	}
	if err := s.Create(t.Context(), &pentecost.Session{ID: "golden-eagle-427", Broadcast: pentecost.BroadcastState{Volume: math.NaN()}}); err == nil {
		t.Error("Create of an unencodable record succeeded")
	}
}
