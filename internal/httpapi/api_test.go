package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/internal/inmem"
	"github.com/pentecost/pentecost/sessionid"
	"github.com/pentecost/pentecost/sessions"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// tokens maps a bearer token to a subject; "bad" fails verification.
type tokens map[string]string

func (v tokens) Verify(_ context.Context, tok string) (auth.Identity, error) {
	if tok == "bad" {
		return auth.Identity{}, pentecost.Errorf(pentecost.ErrUnauthorized, "token signature is invalid")
	}
	return auth.Identity{Subject: v[tok]}, nil
}

type origins []string

func (o origins) Allows(origin string) bool {
	for _, x := range o {
		if x == origin {
			return true
		}
	}
	return false
}

// flaky is a store that can be taken down.
type flaky struct {
	*inmem.Store
	down bool
}

func (f *flaky) Ping(ctx context.Context) error {
	if f.down {
		return errors.New("store down")
	}
	return f.Store.Ping(ctx)
}

func (f *flaky) Create(ctx context.Context, r *pentecost.Session) error {
	if f.down {
		return errors.New("store down")
	}
	return f.Store.Create(ctx, r)
}

type fixture struct {
	api   *API
	mux   *http.ServeMux
	store *flaky
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	store := &flaky{Store: inmem.NewStore()}
	cfg := sessions.DefaultConfig()
	cfg.SweepInterval, cfg.ReassertInterval, cfg.StatusInterval = 0, 0, 0
	svc := sessions.New(cfg, sessions.Options{
		Store: store, Clock: clock, IDs: sessionid.Generator{},
		Bus: inmem.NewBus(), Presence: inmem.NewPresence(sessions.NewNodeID()),
	})
	t.Cleanup(svc.Close)
	api := &API{
		Sessions: svc,
		Auth:     tokens{"alice-token": "alice", "bob-token": "bob", "nosub": ""},
		CORS:     origins{"https://church.example"},
		Clock:    clock,
		Logger:   slog.New(slog.DiscardHandler),
	}
	mux := http.NewServeMux()
	api.Register(mux)
	return &fixture{api: api, mux: mux, store: store}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (f *fixture) do(t *testing.T, method, path, token, body string, headers ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return reply{rec.Code, rec.Header(), m}
}

func (f *fixture) create(t *testing.T) string {
	t.Helper()
	r := f.do(t, "POST", "/sessions", "Bearer alice-token", `{"sourceLanguage":"en"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	return r.body["sessionId"].(string)
}

// Who may call: a bearer token that verifies and names a subject.
func TestAuthorization(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, header, code string
	}{
		{"none", "", pentecost.ErrUnauthorized},
		{"not bearer", "Basic YWxpY2U6eA==", pentecost.ErrUnauthorized},
		{"empty bearer", "Bearer   ", pentecost.ErrUnauthorized},
		{"fails verification", "Bearer bad", pentecost.ErrUnauthorized},
		{"no subject", "Bearer nosub", pentecost.ErrUnauthorized},
		{"lower-case scheme", "bearer alice-token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/sessions", tc.header, `{"sourceLanguage":"en"}`)
			if tc.code == "" {
				if r.status != http.StatusCreated {
					t.Fatalf("%d %v", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusUnauthorized || r.body["code"] != tc.code || r.body["timestamp"] != float64(t0.UnixMilli()) {
				t.Fatalf("%d %v", r.status, r.body)
			}
		})
	}
	f.api.Auth = nil
	if r := f.do(t, "POST", "/sessions", "Bearer alice-token", `{}`); r.status != http.StatusUnauthorized {
		t.Fatalf("without a verifier: %d", r.status)
	}
}

// Bodies are decoded field by field: a missing field and a wrongly typed
// one get distinct errors.
func TestBodies(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", `{`, 400, pentecost.ErrInvalidMessage},
		{"an array", `[]`, 400, pentecost.ErrInvalidMessage},
		{"null", `null`, 400, pentecost.ErrInvalidMessage},
		{"too large", `{"sourceLanguage":"` + strings.Repeat("a", maxBody) + `"}`, 400, pentecost.ErrInvalidMessage},
		{"wrong type", `{"sourceLanguage":7}`, 400, pentecost.ErrInvalidParameter},
		{"missing", `{"qualityTier":"premium"}`, 400, pentecost.ErrMissingParameter},
		{"null field", `{"sourceLanguage":null}`, 400, pentecost.ErrMissingParameter},
		{"ok", `{"sourceLanguage":"en","qualityTier":"premium","audioFormat":"opus"}`, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/sessions", "Bearer alice-token", tc.body)
			if r.status != tc.status || (tc.code != "" && r.body["code"] != tc.code) {
				t.Fatalf("%d %v", r.status, r.body)
			}
			if tc.code == "" && (r.header.Get("Location") != "/sessions/"+r.body["sessionId"].(string) || r.body["audioFormat"] != "opus") {
				t.Fatalf("created: %v %v", r.header, r.body)
			}
		})
	}
}

func TestSessionLifecycleOverHTTP(t *testing.T) {
	f := newFixture(t)
	id := f.create(t)
	if r := f.do(t, "GET", "/sessions/"+id, "", ""); r.status != 200 || r.body["status"] != "active" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("get: %d %v", r.status, r.body)
	}
	for _, tc := range []struct {
		name, method, token, body string
		status                    int
		code                      string
	}{
		{"patch by another", "PATCH", "Bearer bob-token", `{"status":"paused"}`, 403, pentecost.ErrForbidden},
		{"patch wrong type", "PATCH", "Bearer alice-token", `{"status":true}`, 400, pentecost.ErrInvalidParameter},
		{"patch no token", "PATCH", "", `{"status":"paused"}`, 401, pentecost.ErrUnauthorized},
		{"patch bad body", "PATCH", "Bearer alice-token", `x`, 400, pentecost.ErrInvalidMessage},
		{"patch", "PATCH", "Bearer alice-token", `{"status":"paused"}`, 200, ""},
		{"delete by another", "DELETE", "Bearer bob-token", ``, 403, pentecost.ErrForbidden},
		{"delete no token", "DELETE", "", ``, 401, pentecost.ErrUnauthorized},
		{"delete", "DELETE", "Bearer alice-token", ``, 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, tc.method, "/sessions/"+id, tc.token, tc.body)
			if r.status != tc.status || (tc.code != "" && r.body["code"] != tc.code) {
				t.Fatalf("%d %v", r.status, r.body)
			}
		})
	}
	r := f.do(t, "GET", "/sessions/"+id, "", "")
	if r.status != 404 || r.body["code"] != pentecost.ErrSessionNotFound || r.body["error"] != r.body["message"] {
		t.Fatalf("get after delete: %d %v", r.status, r.body)
	}
	if d, _ := r.body["details"].(map[string]any); d["sessionId"] != id {
		t.Fatalf("details %v", r.body["details"])
	}
}

// A failure that is not a protocol error becomes INTERNAL_ERROR with a
// correlation ID; an unavailable store answers 503 with Retry-After.
func TestFailures(t *testing.T) {
	f := newFixture(t)
	f.store.down = true
	r := f.do(t, "POST", "/sessions", "Bearer alice-token", `{"sourceLanguage":"en"}`)
	if r.status != 503 || r.body["code"] != pentecost.ErrServiceUnavailable || r.header.Get("Retry-After") != "5" {
		t.Fatalf("store down: %d %v %v", r.status, r.body, r.header)
	}
	rec := httptest.NewRecorder()
	f.api.fail(rec, errors.New("boom"))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	d, _ := body["details"].(map[string]any)
	corr, _ := d["correlationId"].(string)
	if rec.Code != 500 || body["code"] != pentecost.ErrInternal || len(corr) != 12 || !strings.Contains(body["message"].(string), corr) {
		t.Fatalf("internal: %d %v", rec.Code, body)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "OPTIONS", "/sessions", "", "", "Origin", "https://church.example")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://church.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PATCH") || r.header.Get("Vary") != "Origin" {
		t.Fatalf("allowed preflight: %d %v", r.status, r.header)
	}
	r = f.do(t, "OPTIONS", "/sessions/golden-eagle-427", "", "", "Origin", "https://evil.example")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", r.status, r.header)
	}
	r = f.do(t, "GET", "/languages", "", "", "Origin", "https://church.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://church.example" ||
		r.header.Get("Cache-Control") != "public, max-age=3600" || len(r.body["languages"].([]any)) == 0 {
		t.Fatalf("languages: %d %v", r.status, r.header)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name      string
		storeDown bool
		ready     func(context.Context) error
		readyz    int
		health    string
	}{
		{"up", false, nil, 200, "healthy"},
		{"store down", true, nil, 503, "unhealthy"},
		{"not ready beyond the store", false, func(context.Context) error { return errors.New("no jwks") }, 503, "healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.store.down, f.api.Ready = tc.storeDown, tc.ready
			if r := f.do(t, "GET", "/healthz", "", ""); r.status != 200 || r.body["status"] != "ok" {
				t.Fatalf("healthz: %d %v", r.status, r.body)
			}
			r := f.do(t, "GET", "/readyz", "", "")
			if r.status != tc.readyz || (tc.readyz == 503 && r.header.Get("Retry-After") != "5") {
				t.Fatalf("readyz: %d %v", r.status, r.header)
			}
			if r := f.do(t, "GET", "/health", "", ""); r.body["status"] != tc.health || r.body["service"] != "pentecost" {
				t.Fatalf("health: %d %v", r.status, r.body)
			}
		})
	}
}
