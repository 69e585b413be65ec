// Package bustest is the conformance suite for sessions.Bus. Every
// implementation runs it from its own tests:
//
//	func TestBusConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) func(t *testing.T) sessions.Bus { ... })
//	}
//
// newNetwork returns, for each subtest, a fresh network; calling the
// function it returns gives one more node's bus on that network. Nodes of
// one network see each other's messages; networks are separate.
package bustest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/sessions"
)

// wait bounds every delivery the suite expects: buses on a network deliver
// asynchronously.
const wait = 5 * time.Second

// Run runs the suite.
func Run(t *testing.T, newNetwork func(t *testing.T) func(t *testing.T) sessions.Bus) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, func(*testing.T) sessions.Bus)
	}{
		{"DeliversToEverySubscriberInOrder", testDelivery},
		{"TopicsAreSeparate", testTopics},
		{"CancelStopsOneSubscription", testCancel},
		{"BinaryPayloads", testBinary},
		{"NextSeqRemembersTheHighestNumber", testNextSeq},
		{"NextSeqAcrossTheWrap", testNextSeqWrap},
		{"SeqTopicNumbersApart", testSeqTopic},
		{"ConcurrentSenders", testConcurrent},
		{"Ping", testPing},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newNetwork(t)) })
	}
}

// inbox collects what a subscription receives.
type inbox struct {
	mu   sync.Mutex
	msgs [][]byte
	more chan struct{}
}

func newInbox() *inbox { return &inbox{more: make(chan struct{}, 1)} }

func (in *inbox) fn(msg []byte) {
	in.mu.Lock()
	in.msgs = append(in.msgs, append([]byte(nil), msg...))
	in.mu.Unlock()
	select {
	case in.more <- struct{}{}:
	default:
	}
}

// await waits until n messages arrived and returns them.
func (in *inbox) await(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.After(wait)
	for {
		in.mu.Lock()
		got := append([][]byte(nil), in.msgs...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-in.more:
		case <-deadline:
			t.Fatalf("%d messages arrived within %v, want %d: %q", len(got), wait, n, got)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func subscribe(t *testing.T, b sessions.Bus, topic string) (*inbox, sessions.Subscription) {
	t.Helper()
	in := newInbox()
	sub, err := b.Subscribe(ctx(t), topic, in.fn)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	t.Cleanup(func() { _ = sub.Cancel(context.Background()) })
	return in, sub
}

func send(t *testing.T, b sessions.Bus, msgs ...sessions.Envelope) {
	t.Helper()
	if err := b.Send(ctx(t), msgs); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func env(topic, msg string) sessions.Envelope {
	return sessions.Envelope{Topic: topic, Msg: []byte(msg)}
}

func numbered(topic string, seq uint32) sessions.Envelope {
	return sessions.Envelope{Topic: topic, Msg: []byte(fmt.Sprint(seq)), Numbered: true, Seq: seq}
}

func texts(msgs [][]byte) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m)
	}
	return out
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Every subscriber of a topic, on any node, the sender's own included, gets
// every message, in the order sent, one Send after the other.
func testDelivery(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	onA, _ := subscribe(t, a, "s")
	onB, _ := subscribe(t, b, "s")
	send(t, a, env("s", "1"), env("s", "2"))
	send(t, b, env("s", "3"))
	send(t, a, env("s", "4"))
	// One sender's messages keep their order; two senders' may interleave.
	for name, in := range map[string]*inbox{"A": onA, "B": onB} {
		got := texts(in.await(t, 4))
		var fromA []string
		for _, m := range got {
			if m != "3" {
				fromA = append(fromA, m)
			}
		}
		if len(got) != 4 || !same(fromA, []string{"1", "2", "4"}) {
			t.Fatalf("node %s received %q, want 1, 2, 4 in order and 3", name, got)
		}
	}
}

// A subscriber gets its topic's messages and no other's.
func testTopics(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	audio, _ := subscribe(t, a, "s:audio")
	control, _ := subscribe(t, a, "s")
	other, _ := subscribe(t, a, "t")
	send(t, b, env("s:audio", "chunk"), env("s", "event"), env("t", "marker"))
	other.await(t, 1)
	if got := texts(audio.await(t, 1)); !same(got, []string{"chunk"}) {
		t.Fatalf("audio topic received %q", got)
	}
	if got := texts(control.await(t, 1)); !same(got, []string{"event"}) {
		t.Fatalf("control topic received %q", got)
	}
	send(t, b, env("t", "marker 2"))
	other.await(t, 2)
	if got := texts(audio.await(t, 1)); len(got) != 1 {
		t.Fatalf("audio topic received %q", got)
	}
}

// Cancelling one subscription leaves the others to the same topic, on the
// same node, receiving.
func testCancel(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	first, sub := subscribe(t, a, "s")
	second, _ := subscribe(t, a, "s")
	send(t, b, env("s", "both"))
	first.await(t, 1)
	second.await(t, 1)
	if err := sub.Cancel(ctx(t)); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	send(t, b, env("s", "second only"))
	if got := texts(second.await(t, 2)); !same(got, []string{"both", "second only"}) {
		t.Fatalf("the remaining subscription received %q", got)
	}
	if got := texts(first.await(t, 1)); !same(got, []string{"both"}) {
		t.Fatalf("a cancelled subscription received %q", got)
	}
	// Subscribing again after the last cancel works.
	_ = sub.Cancel(ctx(t))
	third, _ := subscribe(t, a, "s")
	send(t, b, env("s", "again"))
	if got := texts(third.await(t, 1)); !same(got, []string{"again"}) {
		t.Fatalf("a new subscription received %q", got)
	}
}

// Messages are bytes: every value survives, and a message later changed by
// its sender does not change what was sent.
func testBinary(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	in, _ := subscribe(t, a, "s:audio")
	msg := make([]byte, 1024)
	for i := range msg {
		msg[i] = byte(i)
	}
	want := append([]byte(nil), msg...)
	send(t, b, sessions.Envelope{Topic: "s:audio", Msg: msg})
	for i := range msg {
		msg[i] = 0
	}
	if got := in.await(t, 1)[0]; !bytes.Equal(got, want) {
		t.Fatalf("received % x...", got[:16])
	}
}

// NextSeq is one past the highest number sent on the topic, by any node;
// lower numbers never lower it, unnumbered messages never move it, and
// topics are separate.
func testNextSeq(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	next := func(n sessions.Bus, topic string) uint32 {
		t.Helper()
		v, err := n.NextSeq(ctx(t), topic)
		if err != nil {
			t.Fatalf("next seq: %v", err)
		}
		return v
	}
	if n := next(a, "s:audio"); n != 0 {
		t.Fatalf("a topic nothing was sent on: %d, want 0", n)
	}
	send(t, a, numbered("s:audio", 0), numbered("s:audio", 1), numbered("s:audio", 2))
	if n := next(b, "s:audio"); n != 3 {
		t.Fatalf("after 0, 1, 2 from A, B reads %d, want 3", n)
	}
	send(t, b, numbered("s:audio", 1), env("s:audio", "unnumbered"))
	if n := next(a, "s:audio"); n != 3 {
		t.Fatalf("a lower number moved it: %d, want 3", n)
	}
	send(t, b, numbered("s:audio", 41), numbered("s:audio", 40))
	if n := next(a, "s:audio"); n != 42 {
		t.Fatalf("after 41 from B: %d, want 42", n)
	}
	if n := next(a, "t:audio"); n != 0 {
		t.Fatalf("another topic: %d, want 0", n)
	}
}

// A message with a SeqTopic is delivered on its Topic and raises the
// SeqTopic's counter, not the Topic's.
func testSeqTopic(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b := node(t), node(t)
	onB, _ := subscribe(t, b, "s:audio")
	m := numbered("s:audio", 7)
	m.SeqTopic = "s:audio:opus"
	send(t, a, numbered("s:audio", 2), m)
	if got := texts(onB.await(t, 2)); !same(got, []string{"2", "7"}) {
		t.Fatalf("received %q, want 2 then 7 on the topic", got)
	}
	for topic, want := range map[string]uint32{"s:audio": 3, "s:audio:opus": 8} {
		if n, err := b.NextSeq(ctx(t), topic); err != nil || n != want {
			t.Fatalf("NextSeq(%s) = %d, %v; want %d", topic, n, err, want)
		}
	}
}

// Numbers are uint32 and wrap: after 2^32-1 comes 0.
func testNextSeqWrap(t *testing.T, node func(*testing.T) sessions.Bus) {
	a := node(t)
	send(t, a, numbered("s:audio", 1<<32-2))
	if n, _ := a.NextSeq(ctx(t), "s:audio"); n != 1<<32-1 {
		t.Fatalf("after 2^32-2: %d", n)
	}
	send(t, a, numbered("s:audio", 1<<32-1), numbered("s:audio", 0), numbered("s:audio", 1))
	if n, _ := a.NextSeq(ctx(t), "s:audio"); n != 2 {
		t.Fatalf("after the wrap: %d, want 2", n)
	}
}

// Several goroutines and nodes sending at once lose nothing.
func testConcurrent(t *testing.T, node func(*testing.T) sessions.Bus) {
	a, b, c := node(t), node(t), node(t)
	in, _ := subscribe(t, c, "s")
	const perSender = 50
	var wg sync.WaitGroup
	for i, n := range []sessions.Bus{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				if err := n.Send(context.Background(), []sessions.Envelope{env("s", fmt.Sprintf("%d-%d", i, j))}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := texts(in.await(t, 4*perSender))
	seen := map[string]bool{}
	for _, m := range got {
		seen[m] = true
	}
	if len(got) != 4*perSender || len(seen) != 4*perSender {
		t.Fatalf("received %d messages, %d distinct, want %d", len(got), len(seen), 4*perSender)
	}
}

func testPing(t *testing.T, node func(*testing.T) sessions.Bus) {
	if err := node(t).Ping(ctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
