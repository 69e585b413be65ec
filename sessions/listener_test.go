package sessions_test

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestCheckJoin(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    sessions.JoinParams
		code string
		lang string
	}{
		{"ok", sessions.JoinParams{SessionID: "golden-eagle-427", TargetLanguage: "ES"}, "", "es"},
		{"no session", sessions.JoinParams{TargetLanguage: "es"}, pentecost.ErrMissingParameter, ""},
		{"bad session", sessions.JoinParams{SessionID: "x", TargetLanguage: "es"}, pentecost.ErrInvalidSessionID, ""},
		{"no language", sessions.JoinParams{SessionID: "golden-eagle-427"}, pentecost.ErrMissingParameter, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			wantCode(t, "check", sessions.CheckJoin(&p), tc.code)
			if tc.code == "" && p.TargetLanguage != tc.lang {
				t.Fatalf("language %q, want %q", p.TargetLanguage, tc.lang)
			}
		})
	}
}

// The cap refuses one listener too many, but a refresh that names its
// previous connection may pass it, and inherits that connection's encoding.
func TestListenerCapAndRefresh(t *testing.T) {
	n := newWorld(t, func(c *sessions.Config) { c.MaxListeners = 2 }).node()
	rec := n.create("alice")
	first, firstc, _ := n.listen(rec.ID, "en")
	_, _, _ = n.listen(rec.ID, "es")
	_, _, err := n.JoinListener(ctx, newConn(t), sessions.JoinParams{SessionID: rec.ID, TargetLanguage: "fr"})
	wantCode(t, "a third listener under a cap of 2", err, pentecost.ErrSessionFull)
	if pentecost.AsError(err).Details["maxListeners"] != 2 {
		t.Fatalf("details %v", pentecost.AsError(err).Details)
	}
	_ = first
	c := newConn(t)
	_, info, err := n.JoinListener(ctx, c, sessions.JoinParams{
		SessionID: rec.ID, TargetLanguage: "en", Base64: true, PreviousConnectionID: firstc.ID(), InheritEncoding: true,
	})
	if err != nil || !info.Refreshed || info.Base64 || info.ListenerCount != 3 {
		t.Fatalf("refresh over the cap: %+v %v", info, err)
	}
	n.w.clock.Advance(2 * time.Second)
	if code, reason := firstc.awaitClose(); code != 1000 || reason != "connectionRefreshed" {
		t.Fatalf("old connection: %d %s", code, reason)
	}
	first.Leave()
	if v, _ := n.Get(ctx, rec.ID); v.ListenerCount != 2 {
		t.Fatalf("after the old connection left: %d", v.ListenerCount)
	}
	if n.obs.count("refreshed:listener") != 1 || n.obs.count("joined") != 3 {
		t.Fatalf("observed %v", n.obs.counts)
	}
}

func TestListenerLanguagePlaybackAndInfo(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	h, c, _ := n.listen(rec.ID, "es")
	if h.SessionID() != rec.ID || h.Language() != "es" {
		t.Fatal("handle")
	}
	lc, err := h.ChangeLanguage(ctx, "EN")
	if err != nil || lc.TargetLanguage != "en" || lc.SourceLanguage != "en" || !lc.Translated {
		t.Fatalf("change: %+v %v", lc, err)
	}
	_, err = h.ChangeLanguage(ctx, "klingon")
	wantCode(t, "bad language", err, pentecost.ErrInvalidParameter)
	if v, _ := n.Get(ctx, rec.ID); v.LanguageDistribution["en"] != 1 || v.LanguageDistribution["es"] != 0 {
		t.Fatalf("distribution %v", v.LanguageDistribution)
	}
	info := h.Info()
	if info.TargetLanguage != "en" || !info.SpeakerConnected || info.ListenerCount != 1 {
		t.Fatalf("info %+v", info)
	}

	ack := h.SetPlayback(true)
	if ack.Type != protocol.TypePlaybackPaused || ack.SessionID != rec.ID {
		t.Fatalf("pause ack %+v", ack)
	}
	sp.Audio([]byte("not for a paused listener"))
	c.none("audio")
	if ack := h.SetPlayback(false); ack.Type != protocol.TypePlaybackResumed {
		t.Fatalf("resume ack %+v", ack)
	}
	sp.Audio([]byte("heard"))
	if m := c.audio(); string(m.chunk) != "heard" {
		t.Fatalf("after resuming: %q", m.chunk)
	}
	h.Leave()
	h.Leave() // twice is fine
	if v, _ := n.Get(ctx, rec.ID); v.ListenerCount != 0 {
		t.Fatalf("after leaving: %d", v.ListenerCount)
	}
	sp.End(ctx, "")
	_, err = h.ChangeLanguage(ctx, "fr")
	wantCode(t, "change in an ended session", err, pentecost.ErrSessionNotFound)
}

// The speaker hears the listener count: at once for a new language, on a
// change of 10 % or more at most once a second (a change inside that gap
// when it ends), and periodically.
func TestStatusPushes(t *testing.T) {
	n := newWorld(t, func(c *sessions.Config) { c.StatusInterval = 30 * time.Second }).node()
	rec := n.create("alice")
	_, spc := n.speak(rec.ID, "alice", false)
	_, _, _ = n.listen(rec.ID, "es")
	m := spc.expect(protocol.TypeSessionStatus)
	if m.str("updateReason") != protocol.StatusNewLanguage || m.num("listenerCount") != 1 {
		t.Fatalf("new language push: %v", m.json)
	}
	h2, _, _ := n.listen(rec.ID, "es") // 1 → 2 inside the gap: deferred
	spc.none(protocol.TypeSessionStatus)
	n.w.clock.Advance(time.Second)
	m = spc.expect(protocol.TypeSessionStatus)
	if m.str("updateReason") != protocol.StatusListenerChange || m.num("listenerCount") != 2 {
		t.Fatalf("deferred push: %v", m.json)
	}
	n.w.clock.Advance(2 * time.Second)
	h2.Leave()
	m = spc.expect(protocol.TypeSessionStatus)
	if m.str("updateReason") != protocol.StatusListenerChange || m.num("listenerCount") != 1 {
		t.Fatalf("leave push: %v", m.json)
	}
	n.w.clock.Advance(30 * time.Second)
	m = spc.expect(protocol.TypeSessionStatus)
	if m.str("updateReason") != protocol.StatusPeriodic || m.num("sessionDuration") != 33 {
		t.Fatalf("periodic push: %v", m.json)
	}
}
