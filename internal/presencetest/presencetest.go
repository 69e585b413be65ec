// Package presencetest is the conformance suite for sessions.Presence.
// Every implementation runs it from its own tests:
//
//	func TestPresenceConformance(t *testing.T) {
//		presencetest.Run(t, func(t *testing.T) presencetest.Join { ... })
//	}
package presencetest

import (
	"context"
	"encoding/hex"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pentecost/pentecost/sessions"
)

// Join adds one more node to a cluster and returns its presence, and a
// function that takes the node down the way a crash does (its listeners
// leave every count at once, or within a TTL the suite waits out).
type Join func(t *testing.T) (p sessions.Presence, stop func())

// Run runs the suite. newCluster returns, for each subtest, a fresh cluster
// with no node yet.
func Run(t *testing.T, newCluster func(t *testing.T) Join) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Join)
	}{
		{"NodeIDs", testNodeIDs},
		{"CountsAcrossNodes", testCounts},
		{"CapAcrossNodes", testCap},
		{"ConcurrentJoinsRespectTheCap", testConcurrentCap},
		{"LeaveAndNewLanguage", testLeave},
		{"ReconcileReplacesOnlyOwnCounts", testReconcile},
		{"DeadNodeLeavesEveryCount", testDeadNode},
		{"SessionsAreSeparate", testSessions},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newCluster(t)) })
	}
}

// wait bounds the convergence after a node's death.
const wait = 10 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func join(t *testing.T, p sessions.Presence, sid, lang string, max int, over bool) sessions.Admission {
	t.Helper()
	a, err := p.Join(ctx(t), sid, lang, max, over)
	if err != nil {
		t.Fatalf("join %s %s: %v", sid, lang, err)
	}
	return a
}

func counts(t *testing.T, p sessions.Presence, sid string) (int, map[string]int) {
	t.Helper()
	total, by, err := p.Counts(ctx(t), sid)
	if err != nil {
		t.Fatalf("counts %s: %v", sid, err)
	}
	if by == nil {
		by = map[string]int{}
	}
	return total, by
}

func testNodeIDs(t *testing.T, join Join) {
	a, _ := join(t)
	b, _ := join(t)
	for _, p := range []sessions.Presence{a, b} {
		if b, err := hex.DecodeString(p.Node()); err != nil || len(b) != 8 {
			t.Fatalf("node ID %q: want 8 bytes, hex-encoded", p.Node())
		}
	}
	if a.Node() == b.Node() {
		t.Fatal("two nodes share an ID")
	}
	for _, p := range []sessions.Presence{a, b} {
		if alive, err := a.Alive(ctx(t), p.Node()); err != nil || !alive {
			t.Fatalf("node %s alive: %v %v", p.Node(), alive, err)
		}
	}
	if alive, err := a.Alive(ctx(t), "0123456789abcdef"); err != nil || alive {
		t.Fatalf("a node that never was: alive %v, err %v", alive, err)
	}
}

// Each node counts its own listeners; every node sees the sum.
func testCounts(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, _ := joinNode(t)
	if total, by := counts(t, a, "s"); total != 0 || len(by) != 0 {
		t.Fatalf("empty session: %d %v", total, by)
	}
	steps := []struct {
		p       sessions.Presence
		lang    string
		total   int
		newLang bool
	}{{a, "es", 1, true}, {a, "es", 2, false}, {b, "fr", 3, true}, {b, "es", 4, false}}
	for i, s := range steps {
		got := join(t, s.p, "s", s.lang, 0, false)
		if got != (sessions.Admission{Total: s.total, NewLang: s.newLang}) {
			t.Fatalf("join %d (%s): %+v, want total %d new %v", i, s.lang, got, s.total, s.newLang)
		}
	}
	for _, p := range []sessions.Presence{a, b} {
		if total, by := counts(t, p, "s"); total != 4 || !maps.Equal(by, map[string]int{"es": 3, "fr": 1}) {
			t.Fatalf("counts from %s: %d %v", p.Node(), total, by)
		}
	}
}

// The cap counts every node's listeners; a refresh may exceed it.
func testCap(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, _ := joinNode(t)
	join(t, a, "s", "es", 3, false)
	join(t, b, "s", "es", 3, false)
	join(t, a, "s", "fr", 3, false)
	for _, p := range []sessions.Presence{a, b} {
		if got := join(t, p, "s", "de", 3, false); !got.Full || got.Total != 3 {
			t.Fatalf("a 4th listener under a cap of 3 on %s: %+v, want full at 3", p.Node(), got)
		}
	}
	if total, _ := counts(t, a, "s"); total != 3 {
		t.Fatalf("a refused join was counted: %d", total)
	}
	if got := join(t, b, "s", "de", 3, true); got.Full || got.Total != 4 || !got.NewLang {
		t.Fatalf("a refresh over the cap: %+v", got)
	}
	if got := join(t, b, "s", "de", 0, false); got.Full {
		t.Fatalf("no cap: %+v", got)
	}
}

// The check and the count are one step: racing joins never pass the cap.
func testConcurrentCap(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, _ := joinNode(t)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := p.Join(context.Background(), "s", "es", 10, false)
			if err != nil {
				t.Errorf("join: %v", err)
				return
			}
			if !got.Full {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != 10 {
		t.Fatalf("%d joins admitted under a cap of 10", n)
	}
	if total, _ := counts(t, a, "s"); total != 10 {
		t.Fatalf("counted %d", total)
	}
}

// Leave uncounts; a language whose last listener left is new again.
func testLeave(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, _ := joinNode(t)
	join(t, a, "s", "es", 0, false)
	join(t, b, "s", "es", 0, false)
	for _, p := range []sessions.Presence{a, b} {
		if err := p.Leave(ctx(t), "s", "es"); err != nil {
			t.Fatalf("leave: %v", err)
		}
	}
	if total, by := counts(t, a, "s"); total != 0 || by["es"] != 0 {
		t.Fatalf("after every listener left: %d %v", total, by)
	}
	if got := join(t, b, "s", "es", 0, false); !got.NewLang || got.Total != 1 {
		t.Fatalf("joining again: %+v", got)
	}
}

// Reconcile replaces this node's counts of a session with the truth and
// leaves the other nodes' alone.
func testReconcile(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, _ := joinNode(t)
	join(t, a, "s", "es", 0, false)
	join(t, a, "s", "es", 0, false)
	join(t, b, "s", "fr", 0, false)
	if err := a.Reconcile(ctx(t), "s", map[string]int{"pt": 1, "es": 0}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if total, by := counts(t, b, "s"); total != 2 || !maps.Equal(by, map[string]int{"pt": 1, "fr": 1}) {
		t.Fatalf("after A reconciled to pt=1: %d %v", total, by)
	}
	if err := a.Reconcile(ctx(t), "s", nil); err != nil {
		t.Fatalf("reconcile to nothing: %v", err)
	}
	if total, by := counts(t, a, "s"); total != 1 || !maps.Equal(by, map[string]int{"fr": 1}) {
		t.Fatalf("after A reconciled to nothing: %d %v", total, by)
	}
}

// A node that dies stops counting, and Alive says so.
func testDeadNode(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	b, stopB := joinNode(t)
	join(t, a, "s", "es", 0, false)
	join(t, b, "s", "es", 0, false)
	join(t, b, "s", "fr", 0, false)
	stopB()
	deadline := time.Now().Add(wait)
	for {
		total, by := counts(t, a, "s")
		alive, err := a.Alive(ctx(t), b.Node())
		if err == nil && !alive && total == 1 && maps.Equal(by, map[string]int{"es": 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after B died: counts %d %v, B alive %v (%v)", wait, total, by, alive, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its listeners no longer take places under the cap.
	if got := join(t, a, "s", "de", 2, false); got.Full {
		t.Fatalf("a dead node's listeners still count for the cap: %+v", got)
	}
}

func testSessions(t *testing.T, joinNode Join) {
	a, _ := joinNode(t)
	join(t, a, "s", "es", 0, false)
	join(t, a, "t", "fr", 0, false)
	if got := join(t, a, "t", "es", 1, false); !got.Full {
		t.Fatalf("session t under a cap of 1: %+v", got)
	}
	if total, by := counts(t, a, "s"); total != 1 || !maps.Equal(by, map[string]int{"es": 1}) {
		t.Fatalf("session s: %d %v", total, by)
	}
}
