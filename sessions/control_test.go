package sessions_test

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestSpeakerControls(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "en")
	sp, spc := n.speak(rec.ID, "alice", false)
	vol := func(v float64) *float64 { return &v }
	yes, no := true, false
	for _, tc := range []struct {
		name   string
		m      protocol.ClientMessage
		typ    string // "" = refused
		code   string
		paused bool
		muted  bool
		status pentecost.Status
	}{
		{"pause", protocol.ClientMessage{Action: protocol.ActPauseBroadcast}, protocol.TypeBroadcastPaused, "", true, false, pentecost.StatusPaused},
		{"resume", protocol.ClientMessage{Action: protocol.ActResumeBroadcast}, protocol.TypeBroadcastResumed, "", false, false, pentecost.StatusActive},
		{"mute", protocol.ClientMessage{Action: protocol.ActMuteBroadcast}, protocol.TypeBroadcastMuted, "", false, true, pentecost.StatusActive},
		{"unmute", protocol.ClientMessage{Action: protocol.ActUnmuteBroadcast}, protocol.TypeBroadcastUnmuted, "", false, false, pentecost.StatusActive},
		{"control pause", protocol.ClientMessage{Action: protocol.ActControlSession, Command: "pause"}, protocol.TypeBroadcastPaused, "", true, false, pentecost.StatusPaused},
		{"control resume", protocol.ClientMessage{Action: protocol.ActControlSession, Command: "resume"}, protocol.TypeBroadcastResumed, "", false, false, pentecost.StatusActive},
		{"control without command", protocol.ClientMessage{Action: protocol.ActControlSession}, "", pentecost.ErrMissingParameter, false, false, ""},
		{"control unknown command", protocol.ClientMessage{Action: protocol.ActControlSession, Command: "dance"}, "", pentecost.ErrInvalidParameter, false, false, ""},
		{"volume", protocol.ClientMessage{Action: protocol.ActSetVolume, VolumeLevel: vol(0.25)}, protocol.TypeVolumeChanged, "", false, false, pentecost.StatusActive},
		{"volume missing", protocol.ClientMessage{Action: protocol.ActSetVolume}, "", pentecost.ErrMissingParameter, false, false, ""},
		{"volume too loud", protocol.ClientMessage{Action: protocol.ActSetVolume, VolumeLevel: vol(1.5)}, "", pentecost.ErrInvalidParameter, false, false, ""},
		{"state", protocol.ClientMessage{Action: protocol.ActSpeakerState, State: &protocol.SpeakerState{IsPaused: &yes, IsMuted: &yes, Volume: vol(0.5)}}, protocol.TypeSpeakerStateChanged, "", true, true, pentecost.StatusPaused},
		{"state back", protocol.ClientMessage{Action: protocol.ActSpeakerState, State: &protocol.SpeakerState{IsPaused: &no, IsMuted: &no}}, protocol.TypeSpeakerStateChanged, "", false, false, pentecost.StatusActive},
		{"state missing", protocol.ClientMessage{Action: protocol.ActSpeakerState}, "", pentecost.ErrMissingParameter, false, false, ""},
		{"state bad volume", protocol.ClientMessage{Action: protocol.ActSpeakerState, State: &protocol.SpeakerState{Volume: vol(-1)}}, "", pentecost.ErrInvalidParameter, false, false, ""},
		{"unknown", protocol.ClientMessage{Action: "dance"}, "", pentecost.ErrInvalidAction, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.w.clock.Advance(time.Second)
			err := sp.Control(ctx, &tc.m)
			wantCode(t, tc.name, err, tc.code)
			if tc.typ == "" {
				spc.none(protocol.TypeBroadcastPaused)
				return
			}
			for _, c := range []*fakeConn{spc, li} {
				m := c.expect(tc.typ)
				if tc.typ == protocol.TypeVolumeChanged {
					if m.num("volumeLevel") != 0.25 {
						t.Fatalf("%v", m.json)
					}
					continue
				}
				b := m.obj("broadcastState")
				if b["isPaused"] != tc.paused || b["isMuted"] != tc.muted || b["lastStateChange"] != float64(n.w.clock.Now().UnixMilli()) {
					t.Fatalf("%s: %v", c.id, m.json)
				}
			}
			if got := n.w.record(rec.ID); got.Status != tc.status || got.Broadcast.IsPaused != tc.paused || got.Broadcast.IsMuted != tc.muted {
				t.Fatalf("record: %s %+v", got.Status, got.Broadcast)
			}
			// Audio flows only while neither paused nor muted.
			sp.Audio([]byte(tc.name))
			if tc.paused || tc.muted {
				li.none("audio")
			} else if m := li.audio(); string(m.chunk) != tc.name {
				t.Fatalf("audio: %q", m.chunk)
			}
		})
	}
}

// PATCH changes the session live: status, source language, tier; the same
// state path as the speaker's controls.
func TestPatch(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "es")
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name  string
		id    string
		owner string
		p     sessions.PatchParams
		code  string
	}{
		{"bad id", "x", "alice", sessions.PatchParams{Status: s("paused")}, pentecost.ErrInvalidSessionID},
		{"nothing", rec.ID, "alice", sessions.PatchParams{}, pentecost.ErrInvalidParameters},
		{"bad status", rec.ID, "alice", sessions.PatchParams{Status: s("sleeping")}, pentecost.ErrInvalidParameter},
		{"bad language", rec.ID, "alice", sessions.PatchParams{SourceLanguage: s("xx")}, pentecost.ErrInvalidLanguage},
		{"bad tier", rec.ID, "alice", sessions.PatchParams{QualityTier: s("gold")}, pentecost.ErrInvalidParameter},
		{"not the owner", rec.ID, "mallory", sessions.PatchParams{Status: s("paused")}, pentecost.ErrForbidden},
		{"missing", "golden-eagle-427", "alice", sessions.PatchParams{Status: s("paused")}, pentecost.ErrSessionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.Patch(ctx, tc.id, tc.owner, tc.p)
			wantCode(t, tc.name, err, tc.code)
		})
	}
	v, err := n.Patch(ctx, rec.ID, "alice", sessions.PatchParams{Status: s("PAUSED")})
	if err != nil || v.Status != pentecost.StatusPaused || !v.BroadcastState.IsPaused {
		t.Fatalf("pause: %+v %v", v, err)
	}
	li.expect(protocol.TypeBroadcastPaused)
	v, err = n.Patch(ctx, rec.ID, "alice", sessions.PatchParams{Status: s("active"), SourceLanguage: s("es"), QualityTier: s("premium")})
	if err != nil || v.Status != pentecost.StatusActive || v.SourceLanguage != "es" || v.QualityTier != pentecost.TierPremium {
		t.Fatalf("resume and change: %+v %v", v, err)
	}
	// The listener of Spanish now hears the source itself.
	m := li.expect(protocol.TypeLanguageChanged)
	if m.str("sourceLanguage") != "es" || !m.flag("translated") {
		t.Fatalf("languageChanged: %v", m.json)
	}
	li.expect(protocol.TypeBroadcastResumed)
	v, err = n.Patch(ctx, rec.ID, "alice", sessions.PatchParams{Status: s("ended")})
	if err != nil || v.Status != pentecost.StatusEnded {
		t.Fatalf("end: %+v %v", v, err)
	}
	li.expect(protocol.TypeSessionEnded)
	_, err = n.Patch(ctx, rec.ID, "alice", sessions.PatchParams{Status: s("active")})
	wantCode(t, "patch an ended session", err, pentecost.ErrSessionNotFound)
}

func TestDelete(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	_, li, _ := n.listen(rec.ID, "es")
	wantCode(t, "bad id", n.Delete(ctx, "x", "alice"), pentecost.ErrInvalidSessionID)
	wantCode(t, "missing", n.Delete(ctx, "golden-eagle-427", "alice"), pentecost.ErrSessionNotFound)
	wantCode(t, "not the owner", n.Delete(ctx, rec.ID, "mallory"), pentecost.ErrForbidden)
	if err := n.Delete(ctx, rec.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if m := li.expect(protocol.TypeSessionEnded); m.str("reason") != pentecost.EndDeleted {
		t.Fatalf("%v", m.json)
	}
	_, err := n.Get(ctx, rec.ID)
	wantCode(t, "get a deleted session", err, pentecost.ErrSessionNotFound)
	// The ID stays reserved.
	if got := n.w.record(rec.ID); !got.Deleted {
		t.Fatalf("record %+v", got)
	}
	// Deleting an ended (not deleted) session marks it deleted.
	rec2 := n.create("alice")
	if _, err := n.Patch(ctx, rec2.ID, "alice", sessions.PatchParams{Status: ptr("ended")}); err != nil {
		t.Fatal(err)
	}
	if err := n.Delete(ctx, rec2.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := n.w.record(rec2.ID); !got.Deleted || got.EndReason != pentecost.EndSpeakerEnded {
		t.Fatalf("record %+v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// A session ends at its maximum duration, and one nobody attached to at
// its start timeout, by timer, on a read, or by the sweeper.
func TestExpiry(t *testing.T) {
	t.Run("maximum duration, by timer", func(t *testing.T) {
		n := newWorld(t, func(c *sessions.Config) { c.MaxDuration = time.Hour }).node()
		rec := n.create("alice")
		n.speak(rec.ID, "alice", false)
		_, li, _ := n.listen(rec.ID, "en")
		n.w.clock.Advance(time.Hour)
		if m := li.expect(protocol.TypeSessionEnded); m.str("reason") != pentecost.EndExpired {
			t.Fatalf("%v", m.json)
		}
	})
	t.Run("start timeout, on a read", func(t *testing.T) {
		w := newWorld(t, func(c *sessions.Config) { c.StartTimeout = time.Minute })
		n := w.node()
		rec := n.create("alice")
		v, _ := n.Get(ctx, rec.ID)
		if v.ExpiresAt != t0.Add(time.Minute).UnixMilli() {
			t.Fatalf("expiresAt %d", v.ExpiresAt)
		}
		// Another node never held it: only a read (or the sweeper) ends it.
		other := w.node()
		w.clock.Advance(time.Minute)
		v, err := other.Get(ctx, rec.ID)
		if err != nil || v.Status != pentecost.StatusEnded || v.EndReason != pentecost.EndExpired {
			t.Fatalf("view %+v %v", v, err)
		}
	})
	t.Run("by the sweeper", func(t *testing.T) {
		w := newWorld(t, func(c *sessions.Config) { c.MaxDuration = time.Hour; c.SweepInterval = time.Minute })
		n := w.node()
		rec := n.create("alice")
		w.store.down.Store(true) // the timer's read fails: the sweeper catches it
		w.clock.Advance(time.Hour)
		time.Sleep(10 * time.Millisecond)
		w.store.down.Store(false)
		w.clock.Advance(time.Minute)
		eventually(t, "swept", func() bool { return w.record(rec.ID).Ended() })
	})
}
