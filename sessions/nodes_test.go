package sessions_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// Two nodes behave as one server: audio, counts, controls, details and
// ends cross the bus; the cap counts both nodes' listeners.
func TestTwoNodesAreOneServer(t *testing.T) {
	w := newWorld(t, func(c *sessions.Config) { c.MaxListeners = 3 })
	a, b := w.node(), w.node()
	rec := a.create("alice")
	sp, spc := a.speak(rec.ID, "alice", false)
	_, la, _ := a.listen(rec.ID, "en")
	hb, lb, info := b.listen(rec.ID, "es")
	if info.ListenerCount != 2 || !info.SpeakerConnected {
		t.Fatalf("join on B: %+v", info)
	}
	spc.expect(protocol.TypeSessionStatus) // B's new language reached A
	for i := 0; i < 3; i++ {
		sp.Audio([]byte{byte(i)})
		ma, mb := la.audio(), lb.audio()
		if ma.audio.Sequence != uint32(i) || mb.audio.Sequence != uint32(i) || !mb.audio.Ingest.Equal(ma.audio.Ingest) {
			t.Fatalf("chunk %d: A %+v, B %+v", i, ma.audio, mb.audio)
		}
	}
	for _, n := range []*node{a, b} {
		v, err := n.Get(ctx, rec.ID)
		if err != nil || v.ListenerCount != 2 || !v.SpeakerConnected {
			t.Fatalf("view: %+v %v", v, err)
		}
	}
	b.listen(rec.ID, "fr")
	_, _, err := a.JoinListener(ctx, newConn(t), sessions.JoinParams{SessionID: rec.ID, TargetLanguage: "de"})
	wantCode(t, "over the cap across nodes", err, pentecost.ErrSessionFull)

	// A control on A reaches B's listeners; a PATCH on B reaches A's speaker.
	if err := sp.Control(ctx, &protocol.ClientMessage{Action: protocol.ActPauseBroadcast}); err != nil {
		t.Fatal(err)
	}
	lb.expect(protocol.TypeBroadcastPaused)
	if _, err := b.Patch(ctx, rec.ID, "alice", sessions.PatchParams{Status: ptr("active"), SourceLanguage: ptr("es")}); err != nil {
		t.Fatal(err)
	}
	spc.expect(protocol.TypeBroadcastResumed)
	if m := la.expect(protocol.TypeLanguageChanged); m.str("sourceLanguage") != "es" || m.flag("translated") {
		t.Fatalf("source change on A: %v", m.json)
	}
	sp.Audio([]byte("resumed"))
	if m := lb.audio(); string(m.chunk) != "resumed" {
		t.Fatalf("%q", m.chunk)
	}
	// B's listener leaves: A's speaker sees the count fall.
	hb.Leave()
	eventually(t, "count after B's leave", func() bool { return sp.Listeners() == 2 })

	// DELETE on B ends it everywhere.
	if err := b.Delete(ctx, rec.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakeConn{spc, la} {
		if m := c.expect(protocol.TypeSessionEnded); m.str("reason") != pentecost.EndDeleted {
			t.Fatalf("%v", m.json)
		}
		c.awaitClose()
	}
	eventually(t, "end observed on A", func() bool { return a.obs.count("ended:deleted") == 1 })
}

// The speaker moving to another node replaces its old connection there,
// and the sequence continues above every number used.
func TestSpeakerMovesBetweenNodes(t *testing.T) {
	w := newWorld(t, nil)
	a, b, c := w.node(), w.node(), w.node()
	rec := a.create("alice")
	sp, spc := a.speak(rec.ID, "alice", false)
	_, li, _ := c.listen(rec.ID, "es")
	for i := 0; i < 3; i++ {
		sp.Audio([]byte{byte(i)})
		li.audio()
	}
	moved, _ := b.speak(rec.ID, "alice", false)
	spc.expect(protocol.TypeConnectionReplaced)
	spc.awaitClose()
	sp.Leave()
	a.settle()
	li.none(protocol.TypeSpeakerDisconnected)
	moved.Audio([]byte{3})
	if m := li.audio(); m.audio.Sequence != 3 {
		t.Fatalf("after the move: seq %d, want 3", m.audio.Sequence)
	}
	// A refresh back to A: B's connection is closed after the overlap.
	back, _ := a.speak(rec.ID, "alice", true)
	back.Audio([]byte{4})
	if m := li.audio(); m.audio.Sequence != 4 {
		t.Fatalf("after the refresh: seq %d, want 4", m.audio.Sequence)
	}
	if got := w.record(rec.ID); got.SpeakerNode != a.presence.Node() {
		t.Fatalf("speaker node %s", got.SpeakerNode)
	}
}

// When the speaker's node dies, another node's sweeper starts the grace and
// tells the listeners; the speaker may come back anywhere.
func TestDeadSpeakerNodeIsAdopted(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.create("alice")
	a.speak(rec.ID, "alice", false)
	_, lb, _ := b.listen(rec.ID, "es")
	// A crashes. Its forwarder sends the speaker's attach news on its own
	// goroutine; Close delivers whatever is still queued now, so that the
	// news cannot reach B after B's sweep and cancel the grace (a node that
	// really crashed sends nothing more).
	a.Close()
	a.presence.Stop()
	b.Sweep(ctx)
	if m := lb.expect(protocol.TypeSpeakerDisconnected); m.num("graceSeconds") != 60 {
		t.Fatalf("%v", m.json)
	}
	if got := w.record(rec.ID); !got.GraceUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("grace %v", got.GraceUntil)
	}
	b.Sweep(ctx) // once is enough
	lb.none(protocol.TypeSpeakerDisconnected)
	w.clock.Advance(time.Minute)
	if m := lb.expect(protocol.TypeSessionEnded); m.str("reason") != pentecost.EndSpeakerTimeout {
		t.Fatalf("%v", m.json)
	}
}

// A node that restarts takes its sessions up again: a speaker that was
// attached gets a full grace from the restart, listeners may re-join, and
// the sequence continues from the number saved at the shutdown.
func TestRestartResumes(t *testing.T) {
	w := newWorld(t, nil)
	a := w.node()
	rec := a.create("alice")
	waiting := a.create("bob") // never attached: taken up too
	sp, _ := a.speak(rec.ID, "alice", false)
	_, li, _ := a.listen(rec.ID, "en")
	for i := 0; i < 3; i++ {
		sp.Audio([]byte{byte(i)})
		li.audio()
	}
	a.BeginShutdown()
	sp.Leave()
	a.Close()
	a.presence.Stop()
	if got := w.record(rec.ID); got.NextSeq != 3 || !got.SpeakerLive || !got.GraceUntil.IsZero() {
		t.Fatalf("record at shutdown: %+v", got)
	}

	w.clock.Advance(50 * time.Second)
	b := w.node()
	if st := b.Stats(); st.Sessions != 2 {
		t.Fatalf("resumed %d sessions", st.Sessions)
	}
	if got := w.record(rec.ID); !got.GraceUntil.Equal(t0.Add(110 * time.Second)) {
		t.Fatalf("grace after the restart: %v", got.GraceUntil)
	}
	_, li2, info := b.listen(rec.ID, "en")
	if info.SpeakerConnected {
		t.Fatal("no speaker yet")
	}
	sp2, _ := b.speak(rec.ID, "alice", false)
	li2.expect(protocol.TypeSpeakerReconnected)
	sp2.Audio([]byte("after restart"))
	if m := li2.audio(); m.audio.Sequence != 3 {
		t.Fatalf("seq %d, want 3", m.audio.Sequence)
	}
	if v, err := b.Get(ctx, waiting.ID); err != nil || v.Status != pentecost.StatusActive {
		t.Fatalf("the waiting session: %+v %v", v, err)
	}
}

// The node re-asserts its true listener counts, repairing what a lost Leave
// left behind.
func TestReassertRepairsCounts(t *testing.T) {
	w := newWorld(t, func(c *sessions.Config) { c.ReassertInterval = time.Second })
	a := w.node()
	rec := a.create("alice")
	a.listen(rec.ID, "es")
	// A stale count, as a lost Leave leaves it.
	if _, err := a.presence.Join(ctx, rec.ID, "fr", 0, false); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, rec.ID); v.ListenerCount != 2 {
		t.Fatalf("before: %d", v.ListenerCount)
	}
	w.clock.Advance(time.Second)
	eventually(t, "counts repaired", func() bool {
		v, _ := a.Get(ctx, rec.ID)
		return v.ListenerCount == 1 && v.LanguageDistribution["fr"] == 0
	})
}

// Stats count this node's sessions, speakers and listeners.
func TestStats(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	n.speak(rec.ID, "alice", false)
	n.listen(rec.ID, "es")
	n.listen(rec.ID, "es")
	n.listen(rec.ID, "fr")
	st := n.Stats()
	if st.Sessions != 1 || st.SpeakerConnections != 1 || st.Listeners != 3 || st.ListenersByLang["es"] != 2 {
		t.Fatalf("%+v", st)
	}
	if n.Config().MaxListeners != 500 || n.Clock() != n.w.clock {
		t.Fatal("accessors")
	}
	if !n.ExpiresAt(n.w.record(rec.ID)).Equal(t0.Add(24 * time.Hour)) {
		t.Fatal("expiresAt")
	}
}

// A store that lost its data (Redis restarted empty, FLUSHALL) gets back
// the records of the sessions a node holds, so new listeners can join on
// any node; nothing else is written back.
func TestReassertRecreatesLostRecords(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	onAir := a.create("alice")
	waiting := a.create("bob") // held by its creator until a speaker attaches
	movedAway := a.create("carol")
	sp, _ := a.speak(onAir.ID, "alice", false)
	_, li, _ := a.listen(onAir.ID, "en")
	for i := 0; i < 3; i++ {
		sp.Audio([]byte{byte(i)})
		li.audio()
	}
	// carol's speaker attaches on A, then moves to B: B holds it now.
	_, carolOnA := a.speak(movedAway.ID, "carol", false)
	a.listen(movedAway.ID, "fr")
	b.speak(movedAway.ID, "carol", false)
	carolOnA.expect(protocol.TypeConnectionReplaced) // A knows

	w.store.Store.Flush()
	_, _, err := b.JoinListener(ctx, newConn(t), sessions.JoinParams{SessionID: onAir.ID, TargetLanguage: "es"})
	wantCode(t, "join after the loss", err, pentecost.ErrSessionNotFound)

	a.Reassert(ctx)
	got := w.record(onAir.ID)
	if !got.SpeakerLive || got.SpeakerNode != a.presence.Node() || got.NextSeq != 3 || got.OwnerID != "alice" || !got.GraceUntil.IsZero() {
		t.Fatalf("re-created record %+v", got)
	}
	if w.record(waiting.ID).OwnerID != "bob" {
		t.Fatal("the waiting session's record")
	}
	if _, err := w.store.Store.Get(ctx, movedAway.ID); code(err) != pentecost.ErrSessionNotFound {
		t.Fatalf("A re-created a record B holds: %v", err)
	}
	if a.obs.count("reasserted:recreated") != 2 {
		t.Fatalf("observed %v", a.obs.counts)
	}
	b.Reassert(ctx)
	if got := w.record(movedAway.ID); got.SpeakerNode != b.presence.Node() {
		t.Fatalf("B's record %+v", got)
	}
	// A second pass finds nothing to do.
	a.Reassert(ctx)
	if a.obs.count("reasserted:recreated") != 2 {
		t.Fatal("re-created twice")
	}

	_, late, info := b.listen(onAir.ID, "es")
	if !info.SpeakerConnected || info.ListenerCount != 2 {
		t.Fatalf("join after the re-creation: %+v", info)
	}
	sp.Audio([]byte{3})
	if m := late.audio(); m.audio.Sequence != 3 {
		t.Fatalf("seq %d", m.audio.Sequence)
	}
}

// A speaker on air whose node another node took for dead (its heartbeat
// lapsed in a Redis stall) gets its session back: the holder restores the
// record and the listeners hear the speaker is back; the grace the other
// node started never ends the session.
func TestReassertRestoresASpeakerTakenForGone(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.create("alice")
	sp, _ := a.speak(rec.ID, "alice", false)
	_, lb, _ := b.listen(rec.ID, "es")
	// The news of the attach has reached B: B's grace below is then not
	// cancelled by that news arriving late.
	a.settle()
	a.presence.Stop()
	b.Sweep(ctx)
	lb.expect(protocol.TypeSpeakerDisconnected)
	a.presence.Start()
	a.Reassert(ctx)
	lb.expect(protocol.TypeSpeakerReconnected)
	if got := w.record(rec.ID); !got.GraceUntil.IsZero() || !got.SpeakerLive {
		t.Fatalf("record %+v", got)
	}
	if a.obs.count("reasserted:speaker") != 1 {
		t.Fatalf("observed %v", a.obs.counts)
	}
	// The node that started the grace hears of it too: its view says the
	// speaker is on air again.
	eventually(t, "node B sees the speaker back", func() bool {
		v, err := b.Get(ctx, rec.ID)
		return err == nil && v.SpeakerConnected
	})
	w.clock.Advance(2 * time.Minute)
	sp.Audio([]byte("still on air"))
	if m := lb.audio(); string(m.chunk) != "still on air" {
		t.Fatalf("%q", m.chunk)
	}
	b.Sweep(ctx) // a grace B still held would be found expired here
	lb.none(protocol.TypeSessionEnded)
	if got := w.record(rec.ID); got.Ended() {
		t.Fatalf("the session ended: %+v", got)
	}
	// A node whose own heartbeat is down re-asserts no record.
	w.store.Store.Flush()
	a.presence.Stop()
	a.Reassert(ctx)
	if _, err := w.store.Store.Get(ctx, rec.ID); code(err) != pentecost.ErrSessionNotFound {
		t.Fatal("a record re-created by a node that counts as dead")
	}
}

// News of a speaker's attach on another node that is older than an attach
// here (it crossed the bus late) does not replace the speaker here; newer
// news does. A record written back from an older attach is put right by the
// node that holds the newer one.
func TestStaleSpeakerNewsIsIgnored(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.create("alice")
	a.speak(rec.ID, "alice", false) // epoch 1
	_, onB := b.speak(rec.ID, "alice", false)
	epoch := w.record(rec.ID).SpeakerEpoch
	news := func(epoch uint64) {
		msg := append([]byte{'R'}, "\x01\x02\x03\x04\x05\x06\x07\x08"...)
		msg = fmt.Appendf(msg, `{"refresh":false,"epoch":%d}`, epoch)
		if err := w.bus.Send(ctx, []sessions.Envelope{{Topic: rec.ID, Msg: msg}}); err != nil {
			t.Fatal(err)
		}
	}
	news(epoch - 1)
	onB.none(protocol.TypeConnectionReplaced)

	// A stale record names another node: B, on air, restores it.
	if _, err := w.store.Store.Update(ctx, rec.ID, func(r *pentecost.Session) error {
		r.SpeakerNode, r.SpeakerEpoch = a.presence.Node(), epoch-1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.Reassert(ctx)
	if got := w.record(rec.ID); got.SpeakerNode != b.presence.Node() || got.SpeakerEpoch != epoch {
		t.Fatalf("record after B re-asserted: %+v", got)
	}
	if b.obs.count("reasserted:speaker") != 1 {
		t.Fatalf("observed %v", b.obs.counts)
	}

	news(epoch + 1)
	onB.expect(protocol.TypeConnectionReplaced)
}
