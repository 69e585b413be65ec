package clustertest

import (
	"bytes"
	"testing"

	"github.com/pentecost/pentecost/server"
)

// A listener on node B hears a speaker on node A, with the same frames and
// sequence numbers as a listener on A; both nodes report the same counts.
func TestListenersOnEveryNodeHearTheSpeaker(t *testing.T) {
	c := newCluster(t, nil)
	a, b := c.node(), c.node()
	sp, id := speaker(t, a, "alice")
	la, _ := listener(t, a, id, "en")
	lb, joined := listener(t, b, id, "es")
	if joined.Int("listenerCount") != 2 {
		t.Fatalf("sessionJoined on B counts %d listeners, want 2 (one per node)", joined.Int("listenerCount"))
	}
	for i := 0; i < 5; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, 320)
		if err := sp.SendBinary(ctx(t), chunk); err != nil {
			t.Fatal(err)
		}
		fa, fb := nextAudio(t, la), nextAudio(t, lb)
		if fa.Header.Sequence != uint32(i) || fb.Header.Sequence != uint32(i) || !bytes.Equal(fb.Chunk, chunk) {
			t.Fatalf("chunk %d: A seq %d, B seq %d", i, fa.Header.Sequence, fb.Header.Sequence)
		}
		if !fa.Header.Ingest.Equal(fb.Header.Ingest) {
			t.Fatal("nodes disagree on the ingest time")
		}
	}
	statusA, va := getSession(t, a, id)
	statusB, vb := getSession(t, b, id)
	if statusA != 200 || statusB != 200 || va["listenerCount"] != 2.0 || vb["listenerCount"] != 2.0 {
		t.Fatalf("counts: A %d %v, B %d %v", statusA, va["listenerCount"], statusB, vb["listenerCount"])
	}
	dist := vb["languageDistribution"].(map[string]any)
	if dist["en"] != 1.0 || dist["es"] != 1.0 {
		t.Fatalf("distribution on B: %v", dist)
	}
	if vb["speakerConnected"] != true {
		t.Fatalf("B should see the speaker (on A) connected: %v", vb)
	}
}

// The listener cap is checked atomically across nodes.
func TestListenerCapAcrossNodes(t *testing.T) {
	c := newCluster(t, func(cfg *server.Config) { cfg.MaxListenersPerSession = 3 })
	a, b := c.node(), c.node()
	_, id := speaker(t, a, "alice")
	listener(t, a, id, "es")
	listener(t, b, id, "es")
	listener(t, a, id, "fr")
	ev := refused(t, dial(t, b, q("sessionId", id, "targetLanguage", "de")), "SESSION_FULL")
	if ev.Map("details")["maxListeners"] != 3.0 {
		t.Fatalf("details: %v", ev.JSON)
	}
	refused(t, dial(t, a, q("sessionId", id, "targetLanguage", "de")), "SESSION_FULL")
}

// The sequence continues when the speaker moves to another node; the old
// connection is replaced.
func TestSequenceContinuesWhenTheSpeakerMoves(t *testing.T) {
	c := newCluster(t, nil)
	a, b, cc := c.node(), c.node(), c.node()
	sp, id := speaker(t, a, "alice")
	li, _ := listener(t, cc, id, "es")
	for i := 0; i < 3; i++ {
		_ = sp.SendBinary(ctx(t), []byte{byte(i)})
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) {
			t.Fatalf("seq %d, want %d", f.Header.Sequence, i)
		}
	}
	moved := dial(t, b, q("sessionId", id, "token", b.Token("alice")))
	expect(t, moved, "sessionJoined")
	expect(t, sp, "connectionReplaced")
	expectClose(t, sp, 1000)
	for i := 3; i < 6; i++ {
		_ = moved.SendBinary(ctx(t), []byte{byte(i)})
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) || f.Chunk[0] != byte(i) {
			t.Fatalf("after the move: seq %d chunk %d, want %d", f.Header.Sequence, f.Chunk[0], i)
		}
	}
}

// Controls and ends reach every node, whichever node they come in on.
func TestControlsAndEndsCrossNodes(t *testing.T) {
	c := newCluster(t, nil)
	a, b := c.node(), c.node()
	sp, id := speaker(t, a, "alice")
	lb, _ := listener(t, b, id, "es")
	la, _ := listener(t, a, id, "fr")

	if err := sp.Send(ctx(t), map[string]any{"action": "pauseBroadcast"}); err != nil {
		t.Fatal(err)
	}
	expect(t, sp, "broadcastPaused")
	if ev := expect(t, lb, "broadcastPaused"); ev.Map("broadcastState")["isPaused"] != true {
		t.Fatalf("B: %v", ev.JSON)
	}
	// A resume over HTTP on node B reaches the speaker on A, whose audio
	// then flows again.
	if code := httpDo(t, "PATCH", b.URL+"/sessions/"+id, b.Token("alice"), `{"status":"active"}`); code != 200 {
		t.Fatalf("PATCH on B: %d", code)
	}
	expect(t, sp, "broadcastResumed")
	expect(t, la, "broadcastResumed")
	expect(t, lb, "broadcastResumed")
	_ = sp.SendBinary(ctx(t), []byte("after resume"))
	if f := nextAudio(t, lb); string(f.Chunk) != "after resume" {
		t.Fatalf("audio after resume: %q", f.Chunk)
	}
	// DELETE on B ends it everywhere.
	if code := httpDo(t, "DELETE", b.URL+"/sessions/"+id, b.Token("alice"), ""); code != 204 {
		t.Fatalf("DELETE on B: %d", code)
	}
	if ev := expect(t, sp, "sessionEnded"); ev.String("reason") != "deleted" {
		t.Fatalf("speaker: %v", ev.JSON)
	}
	expect(t, la, "sessionEnded")
	expect(t, lb, "sessionEnded")
	expectClose(t, sp, 1000)
	expectClose(t, la, 1000)
	if code, _ := getSession(t, a, id); code != 404 {
		t.Fatalf("GET on A after DELETE: %d", code)
	}
}
