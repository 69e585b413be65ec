package sessions_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestAttachSpeakerChecks(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	for _, tc := range []struct {
		name, id, owner, code string
	}{
		{"bad id", "Golden Eagle", "alice", pentecost.ErrInvalidSessionID},
		{"no owner", rec.ID, "", pentecost.ErrUnauthorized},
		{"not the owner", rec.ID, "mallory", pentecost.ErrForbidden},
		{"unknown session", "golden-eagle-427", "alice", pentecost.ErrSessionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := n.AttachSpeaker(ctx, newConn(t), tc.id, tc.owner, false)
			wantCode(t, "attach", err, tc.code)
		})
	}
}

// Listeners may wait for the speaker; they hear it arrive, then its audio,
// binary or base64, with one sequence for both.
func TestSpeakerAudioReachesListeners(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, bin, info := n.listen(rec.ID, "en")
	if info.SpeakerConnected || info.ListenerCount != 1 || !info.Translated {
		t.Fatalf("join before the speaker: %+v", info)
	}
	c := newConn(t)
	_, b64info, err := n.JoinListener(ctx, c, sessions.JoinParams{SessionID: rec.ID, TargetLanguage: "es", Base64: true})
	if err != nil || !b64info.Base64 || b64info.ListenerCount != 2 || b64info.Translated {
		t.Fatalf("base64 join: %+v %v", b64info, err)
	}
	sp, spc := n.speak(rec.ID, "alice", false)
	bin.expect(protocol.TypeSpeakerReconnected)
	c.expect(protocol.TypeSpeakerReconnected)
	if got := n.w.record(rec.ID); !got.SpeakerLive || got.SpeakerAttachedAt.IsZero() || got.SpeakerNode != n.presence.Node() {
		t.Fatalf("record after attach: %+v", got)
	}
	for i := 0; i < 3; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, 64)
		sp.Audio(chunk)
		chunk[0] = 99 // the caller may reuse its buffer
		m := bin.audio()
		if m.audio.Sequence != uint32(i) || m.chunk[0] != byte(i) || !m.audio.Ingest.Equal(t0) {
			t.Fatalf("binary chunk %d: %+v", i, m.audio)
		}
		a := c.audio()
		if a.num("sequenceNumber") != float64(i) || a.str("targetLanguage") != "es" || a.str("format") != "pcm16" || a.str("audioData") == "" {
			t.Fatalf("base64 chunk %d: %v", i, a.json)
		}
	}
	if n.obs.count("audioIn") != 3 {
		t.Fatalf("audio in: %d", n.obs.count("audioIn"))
	}
	st := sp.Status()
	if st.ListenerCount != 2 || st.UpdateReason != protocol.StatusRequested || st.LanguageDistribution["es"] != 1 {
		t.Fatalf("status %+v", st)
	}
	if sp.Listeners() != 2 || sp.SessionID() != rec.ID || sp.Session().OwnerID != "alice" {
		t.Fatal("speaker handle")
	}
	v, _ := n.Get(ctx, rec.ID)
	if !v.SpeakerConnected || v.ListenerCount != 2 {
		t.Fatalf("view %+v", v)
	}
	spc.none(protocol.TypeError)
}

// A second speaker connection replaces the first at once; a refresh keeps
// the old one for the overlap, then closes it.
func TestSpeakerReplacementAndRefresh(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	old, oldc := n.speak(rec.ID, "alice", false)
	cur, curc := n.speak(rec.ID, "alice", false)
	oldc.expect(protocol.TypeConnectionReplaced)
	if code, reason := oldc.awaitClose(); code != 1000 || reason != "connectionReplaced" {
		t.Fatalf("replaced: %d %s", code, reason)
	}
	old.Audio([]byte("ignored"))
	cur.Audio([]byte("heard"))
	if m := li.audio(); string(m.chunk) != "heard" || m.audio.Sequence != 0 {
		t.Fatalf("after the replacement: %q seq %d", m.chunk, m.audio.Sequence)
	}
	old.Leave() // a replaced connection's end is no drop
	li.none(protocol.TypeSpeakerDisconnected)

	next, nextc := n.speak(rec.ID, "alice", true)
	cur.Audio([]byte("overlap"))
	next.Audio([]byte("new"))
	for _, want := range []string{"overlap", "new"} {
		if m := li.audio(); string(m.chunk) != want {
			t.Fatalf("during the overlap: %q, want %q", m.chunk, want)
		}
	}
	n.w.clock.Advance(2 * time.Second)
	if code, reason := curc.awaitClose(); code != 1000 || reason != "connectionRefreshed" {
		t.Fatalf("refreshed: %d %s", code, reason)
	}
	cur.Leave()
	li.none(protocol.TypeSpeakerDisconnected)
	if n.obs.count("refreshed:speaker") != 1 {
		t.Fatal("refresh not observed")
	}
	nextc.none(protocol.TypeConnectionReplaced)
}

// A speaker's drop starts the grace: listeners hear it, a reconnect within
// it resumes the session, and a grace that runs out ends it.
func TestSpeakerGrace(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	sp, _ := n.speak(rec.ID, "alice", false)
	li.expect(protocol.TypeSpeakerReconnected)
	sp.Audio([]byte{1})
	li.audio()

	sp.Leave()
	m := li.expect(protocol.TypeSpeakerDisconnected)
	if m.num("graceSeconds") != 60 {
		t.Fatalf("grace: %v", m.json)
	}
	if got := n.w.record(rec.ID); !got.GraceUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("graceUntil %v", got.GraceUntil)
	}
	if v, _ := n.Get(ctx, rec.ID); v.SpeakerConnected {
		t.Fatal("the view says connected during the grace")
	}
	n.w.clock.Advance(59 * time.Second)
	sp2, _ := n.speak(rec.ID, "alice", false)
	li.expect(protocol.TypeSpeakerReconnected)
	if n.obs.count("grace:reconnected") != 1 {
		t.Fatal("reconnect not observed")
	}
	sp2.Audio([]byte{2})
	if m := li.audio(); m.audio.Sequence != 1 {
		t.Fatalf("the stream continues: seq %d", m.audio.Sequence)
	}
	n.w.clock.Advance(2 * time.Second) // past the first grace: nothing happens
	li.none(protocol.TypeSessionEnded)

	sp2.Leave()
	li.expect(protocol.TypeSpeakerDisconnected)
	n.w.clock.Advance(time.Minute)
	m = li.expect(protocol.TypeSessionEnded)
	if m.str("reason") != pentecost.EndSpeakerTimeout {
		t.Fatalf("ended: %v", m.json)
	}
	if code, _ := li.awaitClose(); code != 1000 {
		t.Fatalf("listener closed with %d", code)
	}
	eventually(t, "timeout observed", func() bool { return n.obs.count("grace:timeout") == 1 })
	if got := n.w.record(rec.ID); got.EndReason != pentecost.EndSpeakerTimeout || got.SpeakerLive {
		t.Fatalf("record %+v", got)
	}
}

// While the node drains, a speaker's connection ending is no drop: the
// grace starts afresh wherever the session is taken up.
func TestShutdownIsNoSpeakerDrop(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	sp, _ := n.speak(rec.ID, "alice", false)
	n.BeginShutdown()
	sp.Leave()
	li.none(protocol.TypeSpeakerDisconnected)
	if got := n.w.record(rec.ID); !got.GraceUntil.IsZero() || !got.SpeakerLive {
		t.Fatalf("record %+v", got)
	}
}

func TestSpeakerEndsTheSession(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	sp, spc := n.speak(rec.ID, "alice", false)
	if err := sp.End(ctx, "Thank you all"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakeConn{li, spc} {
		m := c.expect(protocol.TypeSessionEnded)
		if m.str("reason") != pentecost.EndSpeakerEnded || m.str("message") != "Thank you all" {
			t.Fatalf("%v", m.json)
		}
		if code, reason := c.awaitClose(); code != 1000 || reason != "sessionEnded" {
			t.Fatalf("close %d %s", code, reason)
		}
	}
	if n.obs.count("ended:speakerEnded") != 1 {
		t.Fatal("end not observed")
	}
	// Ending again is not an error; the session reads as ended, and
	// nobody may attach or join.
	if err := sp.End(ctx, ""); err != nil {
		t.Fatalf("second end: %v", err)
	}
	v, err := n.Get(ctx, rec.ID)
	if err != nil || v.Status != pentecost.StatusEnded || v.EndReason != pentecost.EndSpeakerEnded {
		t.Fatalf("view %+v %v", v, err)
	}
	_, _, err = n.AttachSpeaker(ctx, newConn(t), rec.ID, "alice", false)
	wantCode(t, "attach to an ended session", err, pentecost.ErrSessionNotFound)
	_, _, err = n.JoinListener(ctx, newConn(t), sessions.JoinParams{SessionID: rec.ID, TargetLanguage: "en"})
	wantCode(t, "join an ended session", err, pentecost.ErrSessionNotFound)
	// After the retention period the record is gone.
	n.w.clock.Advance(24*time.Hour + time.Second)
	_, err = n.Get(ctx, rec.ID)
	wantCode(t, "after retention", err, pentecost.ErrSessionNotFound)
	n.Sweep(ctx)
	if _, err := n.w.store.Store.Get(ctx, rec.ID); code(err) != pentecost.ErrSessionNotFound {
		t.Fatalf("swept record: %v", err)
	}
}

// With the store down the session still ends for everyone connected here.
func TestEndWithTheStoreDown(t *testing.T) {
	w := newWorld(t, nil)
	n := w.node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	sp, _ := n.speak(rec.ID, "alice", false)
	w.store.down.Store(true)
	err := sp.End(ctx, "")
	wantCode(t, "end with the store down", err, pentecost.ErrServiceUnavailable)
	li.expect(protocol.TypeSessionEnded)
	li.awaitClose()
}
