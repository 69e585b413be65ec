package sessions_test

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/sessions"
)

func TestCreateValidatesAndNormalizes(t *testing.T) {
	n := newWorld(t, nil).node()
	for _, tc := range []struct {
		name       string
		owner      string
		p          sessions.CreateParams
		code       string
		tier, fmt_ string
	}{
		{"defaults", "alice", sessions.CreateParams{SourceLanguage: "en"}, "", pentecost.TierStandard, pentecost.FormatPCM16},
		{"case and spaces", "alice", sessions.CreateParams{SourceLanguage: "en", QualityTier: " Premium ", AudioFormat: "OPUS"}, "", pentecost.TierPremium, pentecost.FormatOpus},
		{"no owner", "", sessions.CreateParams{SourceLanguage: "en"}, pentecost.ErrUnauthorized, "", ""},
		{"no language", "alice", sessions.CreateParams{}, pentecost.ErrMissingParameter, "", ""},
		{"unknown language", "alice", sessions.CreateParams{SourceLanguage: "xx"}, pentecost.ErrInvalidLanguage, "", ""},
		{"bad tier", "alice", sessions.CreateParams{SourceLanguage: "en", QualityTier: "gold"}, pentecost.ErrInvalidParameter, "", ""},
		{"bad format", "alice", sessions.CreateParams{SourceLanguage: "en", AudioFormat: "mp3"}, pentecost.ErrInvalidParameter, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := n.Create(ctx, tc.owner, tc.p)
			wantCode(t, "create", err, tc.code)
			if err != nil {
				return
			}
			if rec.QualityTier != tc.tier || rec.AudioFormat != tc.fmt_ || rec.Status != pentecost.StatusActive ||
				rec.OwnerID != tc.owner || !rec.ExpiresAt.Equal(t0.Add(24*time.Hour)) || !rec.Broadcast.IsActive {
				t.Fatalf("record %+v", rec)
			}
			if got := n.w.record(rec.ID); got.OwnerID != tc.owner {
				t.Fatalf("stored owner %q", got.OwnerID)
			}
		})
	}
	if n.obs.count("created") != 2 {
		t.Fatalf("created observed %d times", n.obs.count("created"))
	}
}

func TestCreateRateLimit(t *testing.T) {
	n := newWorld(t, nil).node()
	n.limiter.set(true, nil)
	_, err := n.Create(ctx, "alice", sessions.CreateParams{SourceLanguage: "en"})
	wantCode(t, "over the limit", err, pentecost.ErrRateLimited)
	if ra := pentecost.AsError(err).Details["retryAfter"]; ra != 90 {
		t.Fatalf("retryAfter %v, want 90", ra)
	}
	if n.obs.count("limited:sessions") != 1 {
		t.Fatal("rate limit not observed")
	}
	// A limiter that cannot answer must not stop a sermon from starting.
	n.limiter.set(true, errStoreDown)
	if _, err := n.Create(ctx, "alice", sessions.CreateParams{SourceLanguage: "en"}); err != nil {
		t.Fatalf("limiter down: %v", err)
	}
	// No limit configured: the limiter is not asked.
	w := newWorld(t, func(c *sessions.Config) { c.SessionsPerHour = 0 })
	u := w.node()
	u.limiter.set(true, nil)
	if _, err := u.Create(ctx, "alice", sessions.CreateParams{SourceLanguage: "en"}); err != nil || u.limiter.calls != 0 {
		t.Fatalf("no limit: %v, %d calls", err, u.limiter.calls)
	}
}

func TestRateLimitedRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		retry time.Duration
		want  int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Minute, 60}} {
		e := sessions.RateLimited("slow down", tc.retry)
		if e.Code != pentecost.ErrRateLimited || e.Details["retryAfter"] != tc.want {
			t.Errorf("RateLimited(%v): %v %v, want retryAfter %d", tc.retry, e.Code, e.Details, tc.want)
		}
	}
}

func TestCreateWithTheStoreDown(t *testing.T) {
	w := newWorld(t, nil)
	n := w.node()
	w.store.down.Store(true)
	_, err := n.Create(ctx, "alice", sessions.CreateParams{SourceLanguage: "en"})
	wantCode(t, "store down", err, pentecost.ErrServiceUnavailable)
	if pentecost.AsError(err).Details["retryAfter"] != 5 {
		t.Fatalf("details %v", pentecost.AsError(err).Details)
	}
	if n.Ping(ctx) == nil {
		t.Fatal("Ping with the store down")
	}
	w.store.down.Store(false)
	if n.Ping(ctx) != nil {
		t.Fatal("Ping with the store up")
	}
}

func TestCreateViewAndGet(t *testing.T) {
	n := newWorld(t, nil).node()
	v, err := n.CreateView(ctx, "alice", sessions.CreateParams{SourceLanguage: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != pentecost.StatusActive || v.SpeakerConnected || v.ListenerCount != 0 || v.SourceLanguage != "en" {
		t.Fatalf("view %+v", v)
	}
	// Until a speaker attaches, the start timeout is the expiry (24 h by
	// default, as is the maximum duration).
	if v.ExpiresAt != t0.Add(24*time.Hour).UnixMilli() {
		t.Fatalf("expiresAt %d", v.ExpiresAt)
	}
	got, err := n.Get(ctx, v.SessionID)
	if err != nil || got.SessionID != v.SessionID {
		t.Fatalf("get: %+v %v", got, err)
	}
	_, err = n.Get(ctx, "not an id")
	wantCode(t, "bad id", err, pentecost.ErrInvalidSessionID)
	_, err = n.Get(ctx, "golden-eagle-427")
	wantCode(t, "missing", err, pentecost.ErrSessionNotFound)
}
