package opstest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/bolt"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// flakyStore is a real embedded store that can be made to fail, the way a
// full disk or a lost network store fails.
type flakyStore struct {
	pentecost.SessionStore
	down atomic.Bool
}

var errDown = errors.New("store unreachable (test)")

func (f *flakyStore) Create(ctx context.Context, s *pentecost.Session) error {
	if f.down.Load() {
		return errDown
	}
	return f.SessionStore.Create(ctx, s)
}

func (f *flakyStore) Get(ctx context.Context, id string) (*pentecost.Session, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.SessionStore.Get(ctx, id)
}

func (f *flakyStore) Update(ctx context.Context, id string, fn func(*pentecost.Session) error) (*pentecost.Session, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.SessionStore.Update(ctx, id, fn)
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errDown
	}
	return f.SessionStore.Ping(ctx)
}

func TestStoreOutage(t *testing.T) {
	bs, err := bolt.Open(t.TempDir()+"/sessions.db", bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyStore{SessionStore: bs}
	cfg := server.Defaults()
	cfg.JWTSecret = testserver.Secret
	cfg.DataDir = t.TempDir()
	cfg.AudioMaxChunksPerSec = 0
	cfg.SweepInterval = 0
	n := testserver.StartOptions(t, cfg, clockwork.NewFakeClockAt(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)),
		server.Options{Store: store})

	sp, id := speaker(t, n, "alice")
	li := listener(t, n, id, "es")
	store.down.Store(true)

	// New sessions and joins are refused with a retry hint...
	ev := refused(t, dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token("bob"))), "SERVICE_UNAVAILABLE", 4503)
	if ev.Map("details")["retryAfter"] == nil {
		t.Fatalf("no retryAfter: %v", ev.JSON)
	}
	refused(t, dial(t, n, q("sessionId", id, "targetLanguage", "fr")), "SERVICE_UNAVAILABLE", 4503)
	status, hdr, body := httpDo(t, "POST", n.URL+"/sessions", n.Token("bob"), `{"sourceLanguage":"en"}`)
	if status != 503 || body["code"] != "SERVICE_UNAVAILABLE" || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST during outage: %d %v %v", status, body, hdr)
	}
	if status, _, _ := httpDo(t, "GET", n.URL+"/readyz", "", ""); status != 503 {
		t.Fatalf("/readyz during outage: %d", status)
	}
	if status, _, _ := httpDo(t, "GET", n.URL+"/healthz", "", ""); status != 200 {
		t.Fatalf("/healthz must stay up (liveness): %d", status)
	}

	// ...while the live session's audio keeps flowing.
	for i := 0; i < 5; i++ {
		if err := sp.SendBinary(ctx(t), []byte{byte(i), 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) {
			t.Fatalf("seq %d, want %d", f.Header.Sequence, i)
		}
	}
	// A control that must be persisted says so, and the connection lives.
	if err := sp.Send(ctx(t), map[string]any{"action": "pauseBroadcast"}); err != nil {
		t.Fatal(err)
	}
	if ev := expect(t, sp, "error"); ev.String("code") != "SERVICE_UNAVAILABLE" {
		t.Fatalf("pause during outage: %v", ev.JSON)
	}

	// Recovery needs no restart.
	store.down.Store(false)
	if status, _, _ := httpDo(t, "GET", n.URL+"/readyz", "", ""); status != 200 {
		t.Fatalf("/readyz after recovery: %d", status)
	}
	listener(t, n, id, "fr")
}
