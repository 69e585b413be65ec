// Package storetest is the conformance suite for pentecost.SessionStore.
// Every implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) pentecost.SessionStore { ... })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
)

// Run runs the suite. newStore must return a new, empty store for each call
// (each subtest gets its own). Run closes every store it gets when the
// subtest ends; a store the test already closed is closed a second time, and
// the error of that second Close is ignored.
//
// Update's fn may be called more than once by a store that retries on
// conflict (an optimistic Redis transaction); the suite's fns are written to
// allow that, each call getting a fresh copy of the current record.
func Run(t *testing.T, newStore func(t *testing.T) pentecost.SessionStore) {
	t.Helper()
	open := func(t *testing.T) pentecost.SessionStore {
		t.Helper()
		s := newStore(t)
		if s == nil {
			t.Fatal("newStore returned nil")
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, pentecost.SessionStore)
	}{
		{"RoundTrip", testRoundTrip},
		{"MinimalRoundTrip", testMinimalRoundTrip},
		{"CopiesAreNotShared", testCopies},
		{"CreateTaken", testCreateTaken},
		{"CreateTakenByEnded", testCreateTakenByEnded},
		{"GetMissing", testGetMissing},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"UpdateAbort", testUpdateAbort},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"List", testList},
		{"Sweep", testSweep},
		{"ConcurrentCreateSameID", testConcurrentCreateSameID},
		{"ConcurrentCreateDistinct", testConcurrentCreateDistinct},
		{"CancelledContext", testCancelled},
		{"Ping", testPing},
		{"Close", testClose},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func mustCreate(t *testing.T, s pentecost.SessionStore, sess *pentecost.Session) {
	t.Helper()
	if err := s.Create(t.Context(), sess); err != nil {
		t.Fatalf("Create(%s): %v", sess.ID, err)
	}
}

func mustGet(t *testing.T, s pentecost.SessionStore, id string) *pentecost.Session {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if got == nil {
		t.Fatalf("Get(%s) returned nil and no error", id)
	}
	return got
}

func wantCode(t *testing.T, what string, err error, code string) *pentecost.Error {
	t.Helper()
	e := pentecost.AsError(err)
	if e == nil || e.Code != code {
		t.Fatalf("%s: error %v, want code %s", what, err, code)
	}
	return e
}

func wantNotFound(t *testing.T, what string, err error, id string) {
	t.Helper()
	e := wantCode(t, what, err, pentecost.ErrSessionNotFound)
	if e.Details["sessionId"] != id {
		t.Errorf("%s: details.sessionId = %v, want %s", what, e.Details["sessionId"], id)
	}
}

func testRoundTrip(t *testing.T, s pentecost.SessionStore) {
	want := Sample("golden-eagle-427")
	if zero := zeroFields(want); len(zero) > 0 {
		t.Fatalf("storetest.Sample leaves %v zero; set them so the round trip covers them", zero)
	}
	mustCreate(t, s, want)
	if d := Diff(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("Get after Create: %s", d)
	}
}

func testMinimalRoundTrip(t *testing.T, s pentecost.SessionStore) {
	want := Active("quiet-dove-100")
	mustCreate(t, s, want)
	got := mustGet(t, s, want.ID)
	if d := Diff(want, got); d != "" {
		t.Errorf("Get after Create: %s", d)
	}
	if !got.EndedAt.IsZero() || !got.SpeakerAttachedAt.IsZero() {
		t.Errorf("zero times came back as EndedAt %v, SpeakerAttachedAt %v", got.EndedAt, got.SpeakerAttachedAt)
	}
}

func testCopies(t *testing.T, s pentecost.SessionStore) {
	sess := Active("humble-lamp-512")
	want := sess.Clone()
	mustCreate(t, s, sess)
	sess.OwnerID = "changed-after-create"
	got := mustGet(t, s, want.ID)
	got.OwnerID = "changed-after-get"
	got.Broadcast.Volume = 0.1
	if d := Diff(want, mustGet(t, s, want.ID)); d != "" {
		t.Errorf("a caller's change to a record it passed or got reached the store: %s", d)
	}
	updated, err := s.Update(t.Context(), want.ID, func(cur *pentecost.Session) error {
		cur.Broadcast.Volume = 0.5
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	updated.Broadcast.Volume = 0.9
	if v := mustGet(t, s, want.ID).Broadcast.Volume; v != 0.5 {
		t.Errorf("volume %v after changing Update's result, want 0.5", v)
	}
}

func testCreateTaken(t *testing.T, s pentecost.SessionStore) {
	first := Active("faithful-shepherd-100")
	mustCreate(t, s, first)
	second := Active(first.ID)
	second.OwnerID = "someone-else"
	wantCode(t, "second Create", s.Create(t.Context(), second), pentecost.ErrSessionIDTaken)
	if got := mustGet(t, s, first.ID); got.OwnerID != first.OwnerID {
		t.Errorf("owner %q after a refused Create, want %q", got.OwnerID, first.OwnerID)
	}
}

// An ended session keeps its ID until swept, so a stale listener never lands
// in someone else's broadcast (docs/protocol.md, "Session IDs").
func testCreateTakenByEnded(t *testing.T, s pentecost.SessionStore) {
	for _, sess := range []*pentecost.Session{
		Ended("risen-star-777", Base),
		func() *pentecost.Session { d := Ended("still-water-778", Base); d.Deleted = true; return d }(),
		func() *pentecost.Session { p := Active("calm-river-779"); p.Status = pentecost.StatusPaused; return p }(),
	} {
		mustCreate(t, s, sess)
		wantCode(t, "Create over "+string(sess.Status)+" "+sess.ID, s.Create(t.Context(), Active(sess.ID)), pentecost.ErrSessionIDTaken)
	}
	// And a record that ended through Update, as the session layer ends them.
	mustCreate(t, s, Active("lofty-cedar-780"))
	if _, err := s.Update(t.Context(), "lofty-cedar-780", func(cur *pentecost.Session) error {
		cur.Status = pentecost.StatusEnded
		cur.EndedAt = Base
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Create over a session ended by Update", s.Create(t.Context(), Active("lofty-cedar-780")), pentecost.ErrSessionIDTaken)
}

func testGetMissing(t *testing.T, s pentecost.SessionStore) {
	got, err := s.Get(t.Context(), "absent-dove-404")
	wantNotFound(t, "Get(missing)", err, "absent-dove-404")
	if got != nil {
		t.Errorf("Get(missing) returned a record too: %+v", got)
	}
	mustCreate(t, s, Active("present-dove-405"))
	_, err = s.Get(t.Context(), "present-dove-40")
	wantNotFound(t, "Get(prefix of an existing ID)", err, "present-dove-40")
}

func testUpdate(t *testing.T, s pentecost.SessionStore) {
	orig := Active("joyful-harp-321")
	mustCreate(t, s, orig)
	later := Base.Add(time.Hour)
	got, err := s.Update(t.Context(), orig.ID, func(cur *pentecost.Session) error {
		if d := Diff(orig, cur); d != "" {
			return fmt.Errorf("fn was given a record that differs from the stored one: %s", d)
		}
		cur.Status = pentecost.StatusPaused
		cur.Broadcast.IsPaused = true
		cur.UpdatedAt = later
		cur.SpeakerAttachedAt = later
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := orig.Clone()
	want.Status = pentecost.StatusPaused
	want.Broadcast.IsPaused = true
	want.UpdatedAt = later
	want.SpeakerAttachedAt = later
	if d := Diff(want, got); d != "" {
		t.Errorf("Update's result: %s", d)
	}
	if d := Diff(want, mustGet(t, s, orig.ID)); d != "" {
		t.Errorf("Get after Update: %s", d)
	}
}

func testUpdateMissing(t *testing.T, s pentecost.SessionStore) {
	called := false
	got, err := s.Update(t.Context(), "absent-dove-404", func(*pentecost.Session) error {
		called = true
		return nil
	})
	wantNotFound(t, "Update(missing)", err, "absent-dove-404")
	if called || got != nil {
		t.Errorf("Update(missing): fn called %v, result %v", called, got)
	}
	if _, err := s.Get(t.Context(), "absent-dove-404"); pentecost.ErrorCode(err) != pentecost.ErrSessionNotFound {
		t.Errorf("Update(missing) created a record: Get says %v", err)
	}
}

func testUpdateAbort(t *testing.T, s pentecost.SessionStore) {
	orig := Active("patient-olive-222")
	mustCreate(t, s, orig)
	sentinel := errors.New("not allowed")
	got, err := s.Update(t.Context(), orig.ID, func(cur *pentecost.Session) error {
		// Changes made before the error must not be written.
		cur.Status = pentecost.StatusEnded
		cur.OwnerID = "thief"
		return sentinel
	})
	if !errors.Is(err, sentinel) || got != nil {
		t.Fatalf("Update with a failing fn = %v, %v; want nil and the fn's error", got, err)
	}
	if d := Diff(orig, mustGet(t, s, orig.ID)); d != "" {
		t.Errorf("an aborted Update wrote: %s", d)
	}
	// A coded error keeps its code: the session layer relays it to the client.
	_, err = s.Update(t.Context(), orig.ID, func(*pentecost.Session) error {
		return pentecost.Errorf(pentecost.ErrForbidden, "not the owner")
	})
	wantCode(t, "Update with a coded error", err, pentecost.ErrForbidden)
}

// testUpdateConcurrent checks that updates of one record are serialized: a
// lost update would leave the counter short, and two updates that saw the
// same value would return the same result.
func testUpdateConcurrent(t *testing.T, s pentecost.SessionStore) {
	const n = 50
	sess := Active("steadfast-rock-999")
	sess.Broadcast.Volume = 0
	mustCreate(t, s, sess)
	results := make(chan float64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, err := s.Update(t.Context(), sess.ID, func(cur *pentecost.Session) error {
				cur.Broadcast.Volume++
				cur.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond)
				return nil
			})
			if err != nil {
				errs <- err
				return
			}
			results <- got.Broadcast.Volume
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Update: %v", err)
	}
	var seen []float64
	for v := range results {
		seen = append(seen, v)
	}
	slices.Sort(seen)
	for i, v := range seen {
		if v != float64(i+1) {
			t.Fatalf("results of concurrent updates %v: want each of 1..%d once", seen, n)
		}
	}
	got := mustGet(t, s, sess.ID)
	if got.Broadcast.Volume != n || !got.UpdatedAt.Equal(Base.Add(n*time.Millisecond)) {
		t.Errorf("after %d concurrent updates: volume %v, updatedAt %v; want %d and %v",
			n, got.Broadcast.Volume, got.UpdatedAt, n, Base.Add(n*time.Millisecond))
	}
}

func testList(t *testing.T, s pentecost.SessionStore) {
	got, err := s.List(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store = %v, %v; want nothing", got, err)
	}
	active := Active("bright-lamp-101")
	paused := Active("quiet-lamp-102")
	paused.Status = pentecost.StatusPaused
	ended := Ended("risen-lamp-103", Base)
	deleted := Ended("still-lamp-104", Base)
	deleted.Deleted = true
	endedByUpdate := Active("noble-lamp-105")
	for _, sess := range []*pentecost.Session{active, paused, ended, deleted, endedByUpdate} {
		mustCreate(t, s, sess)
	}
	if _, err := s.Update(t.Context(), endedByUpdate.ID, func(cur *pentecost.Session) error {
		cur.Status = pentecost.StatusEnded
		cur.EndedAt = Base
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err = s.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := map[string]*pentecost.Session{active.ID: active, paused.ID: paused}
	if len(got) != len(want) {
		t.Errorf("List returned %d records, want %d (active and paused only)", len(got), len(want))
	}
	for _, g := range got {
		if g == nil {
			t.Fatal("List returned a nil record")
		}
		w, ok := want[g.ID]
		if !ok {
			t.Errorf("List returned %s (status %s)", g.ID, g.Status)
			continue
		}
		if d := Diff(w, g); d != "" {
			t.Errorf("List's %s: %s", g.ID, d)
		}
		delete(want, g.ID)
	}
	for id := range want {
		t.Errorf("List left out %s", id)
	}
}

func testSweep(t *testing.T, s pentecost.SessionStore) {
	cutoff := Base.Add(24 * time.Hour)
	old := Active("ancient-hill-201") // live for long: never swept
	old.CreatedAt, old.UpdatedAt = Base.Add(-48*time.Hour), Base.Add(-48*time.Hour)
	paused := Active("quiet-hill-202")
	paused.Status = pentecost.StatusPaused
	endedLongAgo := Ended("risen-hill-203", cutoff.Add(-time.Hour))
	deletedLongAgo := Ended("still-hill-204", cutoff.Add(-time.Millisecond))
	deletedLongAgo.Deleted = true
	endedAtCutoff := Ended("steady-hill-205", cutoff)
	endedRecently := Ended("lively-hill-206", cutoff.Add(time.Minute))
	for _, sess := range []*pentecost.Session{old, paused, endedLongAgo, deletedLongAgo, endedAtCutoff, endedRecently} {
		mustCreate(t, s, sess)
	}
	n, err := s.Sweep(t.Context(), cutoff)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 (the records ended before the cutoff)", n, err)
	}
	for _, gone := range []string{endedLongAgo.ID, deletedLongAgo.ID} {
		_, err := s.Get(t.Context(), gone)
		wantNotFound(t, "Get of a swept record", err, gone)
	}
	for _, kept := range []*pentecost.Session{old, paused, endedAtCutoff, endedRecently} {
		if d := Diff(kept, mustGet(t, s, kept.ID)); d != "" {
			t.Errorf("Sweep changed %s: %s", kept.ID, d)
		}
	}
	// A swept ID is free again.
	mustCreate(t, s, Active(endedLongAgo.ID))
	if n, err := s.Sweep(t.Context(), cutoff); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v; want 0", n, err)
	}
}

func testConcurrentCreateSameID(t *testing.T, s pentecost.SessionStore) {
	const n = 32
	const id = "golden-crown-500"
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sess := Active(id)
			sess.OwnerID = fmt.Sprintf("owner-%d", i)
			errs[i] = s.Create(t.Context(), sess)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("both creator %d and %d won", winner, i)
		case err == nil:
			winner = i
		case pentecost.ErrorCode(err) != pentecost.ErrSessionIDTaken:
			t.Errorf("creator %d: %v, want %s", i, err, pentecost.ErrSessionIDTaken)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent Create won")
	}
	if got := mustGet(t, s, id); got.OwnerID != fmt.Sprintf("owner-%d", winner) {
		t.Errorf("stored owner %q, but creator %d won", got.OwnerID, winner)
	}
}

func testConcurrentCreateDistinct(t *testing.T, s pentecost.SessionStore) {
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Create(t.Context(), Active(fmt.Sprintf("merry-bell-%d", 100+i))); err != nil {
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.List(t.Context())
	if err != nil || len(got) != n {
		t.Fatalf("List after %d concurrent creates: %d records, %v", n, len(got), err)
	}
}

func testCancelled(t *testing.T, s pentecost.SessionStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	sess := Active("patient-seed-303")
	if err := s.Create(ctx, sess); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context = %v, want context.Canceled", err)
	}
	_, err := s.Get(t.Context(), sess.ID)
	wantNotFound(t, "Get after a cancelled Create", err, sess.ID)
	mustCreate(t, s, sess)
	if _, err := s.Get(ctx, sess.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	called := false
	if _, err := s.Update(ctx, sess.ID, func(*pentecost.Session) error { called = true; return nil }); !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update with a cancelled context = %v (fn called: %v), want context.Canceled and no call", err, called)
	}
}

func testPing(t *testing.T, s pentecost.SessionStore) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testClose(t *testing.T, s pentecost.SessionStore) {
	mustCreate(t, s, Active("gentle-breeze-600"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, err := s.Get(t.Context(), "gentle-breeze-600"); err == nil {
		t.Error("Get after Close succeeded")
	}
}
