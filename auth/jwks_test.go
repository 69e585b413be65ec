package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
)

func wantFetches(t *testing.T, srv *jwksServer, n int64) {
	t.Helper()
	if got := srv.fetches.Load(); got != n {
		t.Fatalf("jwks fetches = %d, want %d", got, n)
	}
}

func wantMessage(t *testing.T, err error, msg string) {
	t.Helper()
	pe := pentecost.AsError(err)
	if pe == nil || pe.Code != pentecost.ErrUnauthorized || pe.Message != msg {
		t.Fatalf("error = %v, want UNAUTHORIZED %q", err, msg)
	}
}

func TestRefetchFloor(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	clock := clockwork.NewFakeClockAt(t0)
	a := newAuth(t, Config{JWKSURL: srv.URL, Clock: clock})
	wantFetches(t, srv, 1) // at start

	ctx := context.Background()
	unknown := func(kid string) string {
		return sign(t, jwt.SigningMethodRS256, rsaKey2(), kid, claims(nil))
	}

	// The start-up fetch counts: within the floor, no refetch.
	_, err := a.Verify(ctx, unknown("rsa-x"))
	wantMessage(t, err, msgUnknownKey)
	wantFetches(t, srv, 1)

	clock.Advance(2 * time.Second)
	_, err = a.Verify(ctx, unknown("rsa-x"))
	wantMessage(t, err, msgUnknownKey)
	wantFetches(t, srv, 2)
	_, err = a.Verify(ctx, unknown("rsa-y"))
	wantMessage(t, err, msgUnknownKey)
	wantFetches(t, srv, 2)

	clock.Advance(1999 * time.Millisecond)
	_, err = a.Verify(ctx, unknown("rsa-z"))
	wantMessage(t, err, msgUnknownKey)
	wantFetches(t, srv, 2)

	// Known kids never fetch.
	if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	wantFetches(t, srv, 2)

	// Key rotation: the IdP publishes a new key; past the floor, a token
	// signed with it triggers one fetch and verifies.
	srv.setKeys(t, map[string]any{"rsa-1": rsaKey(), "rsa-2": rsaKey2()}, nil)
	clock.Advance(time.Millisecond)
	if _, err := a.Verify(ctx, unknown("rsa-2")); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	wantFetches(t, srv, 3)
	if _, err := a.Verify(ctx, unknown("rsa-2")); err != nil {
		t.Fatalf("rotated key again: %v", err)
	}
	wantFetches(t, srv, 3)
}

func TestRefetchFloorConcurrent(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	clock := clockwork.NewFakeClockAt(t0)
	a := newAuth(t, Config{JWKSURL: srv.URL, Clock: clock})
	clock.Advance(time.Hour) // well past the floor, before the refresh timer fires
	tok := sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa-x", claims(map[string]any{"exp": nil, "iat": nil}))

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := a.Verify(context.Background(), tok)
			if pentecost.ErrorCode(err) != pentecost.ErrUnauthorized {
				t.Errorf("err = %v", err)
			}
		})
	}
	wg.Wait()
	wantFetches(t, srv, 2)
}

func TestCustomRefetchFloor(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	clock := clockwork.NewFakeClockAt(t0)
	a := newAuth(t, Config{JWKSURL: srv.URL, Clock: clock, RefetchFloor: 10 * time.Second})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa-x", claims(nil))
	clock.Advance(5 * time.Second)
	_, _ = a.Verify(context.Background(), tok)
	wantFetches(t, srv, 1)
	clock.Advance(5 * time.Second)
	_, _ = a.Verify(context.Background(), tok)
	wantFetches(t, srv, 2)
}

func TestJWKSUnreachable(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	srv.setBody(http.StatusInternalServerError, []byte("boom"))
	clock := clockwork.NewFakeClockAt(t0)
	logs := &logBuffer{}
	a := newAuth(t, Config{JWKSURL: srv.URL, Clock: clock, Logger: logs.logger()})
	if a.Ready() {
		t.Fatal("ready without keys")
	}
	if !strings.Contains(logs.String(), "jwks fetch at start failed") {
		t.Fatalf("start-up failure not logged:\n%s", logs.String())
	}
	good := sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", claims(map[string]any{"exp": unix(24 * time.Hour), "iat": nil}))

	clock.Advance(2 * time.Second)
	_, err := a.Verify(context.Background(), good)
	wantMessage(t, err, msgKeysUnavailable)
	if cause := pentecost.AsError(err).Err; cause == nil || !strings.Contains(cause.Error(), "500") {
		t.Fatalf("fetch failure not attached as the cause: %v", err)
	}
	wantFetches(t, srv, 2)

	// The IdP comes back; the next unknown-kid check past the floor recovers.
	srv.setKeys(t, map[string]any{"rsa-1": rsaKey()}, nil)
	_, err = a.Verify(context.Background(), good)
	wantMessage(t, err, msgKeysUnavailable) // still within the floor
	clock.Advance(2 * time.Second)
	if _, err := a.Verify(context.Background(), good); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if !a.Ready() {
		t.Fatal("not ready after recovery")
	}

	// A later outage keeps the known keys.
	srv.setBody(http.StatusServiceUnavailable, nil)
	clock.Advance(2 * time.Second)
	_, err = a.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa-x", claims(nil)))
	wantMessage(t, err, msgKeysUnavailable)
	if _, err := a.Verify(context.Background(), good); err != nil {
		t.Fatalf("known key during outage: %v", err)
	}
	if !a.Ready() {
		t.Fatal("not ready with cached keys")
	}
}

func TestJWKSServerGone(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	url := srv.URL
	srv.Close()
	a := newAuth(t, Config{JWKSURL: url})
	_, err := a.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", claims(nil)))
	wantMessage(t, err, msgKeysUnavailable)
	if strings.Contains(err.Error(), "alice") {
		t.Fatal("claim leaked")
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	clock := clockwork.NewFakeClockAt(t0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, err := New(ctx, Config{JWKSURL: srv.URL, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	wantFetches(t, srv, 1)

	// Withdraw rsa-1; the hourly refresh must notice without any token
	// having an unknown kid.
	srv.setKeys(t, map[string]any{"ec-1": ecKey()}, nil)
	waitTimer := func() {
		t.Helper()
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		defer bcancel()
		if err := clock.BlockUntilContext(bctx, 1); err != nil {
			t.Fatalf("refresh timer not armed: %v", err)
		}
	}
	waitFetches := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for srv.fetches.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("fetches = %d, want %d", srv.fetches.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitTimer()
	clock.Advance(59 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	wantFetches(t, srv, 1)
	clock.Advance(time.Minute)
	waitFetches(2)
	waitTimer() // the loop has stored the result and armed the next timer

	old := sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", claims(nil))
	_, err = a.Verify(context.Background(), old)
	wantMessage(t, err, msgUnknownKey)

	// A failed refresh is retried after a minute, not an hour.
	srv.setBody(http.StatusBadGateway, nil)
	clock.Advance(time.Hour)
	waitFetches(3)
	waitTimer()
	clock.Advance(time.Minute)
	waitFetches(4)

	// Cancelling the context stops the loop.
	waitTimer()
	cancel()
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer bcancel()
	if err := clock.BlockUntilContext(bctx, 0); err != nil {
		t.Fatalf("refresh loop did not stop: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		body    string
		keys    map[string]any
		algs    map[string]string
		wantErr bool
		wantN   int
	}{
		{name: "rsa and ec", keys: map[string]any{"r": rsaKey(), "e": ecKey()}, wantN: 2},
		{name: "declared algs", keys: map[string]any{"r": rsaKey(), "e": ecKey()}, algs: map[string]string{"r": "RS256", "e": "ES256"}, wantN: 2},
		{name: "RS384 key skipped", keys: map[string]any{"r": rsaKey(), "r2": rsaKey2()}, algs: map[string]string{"r2": "RS384"}, wantN: 1},
		{name: "small rsa skipped", keys: map[string]any{"r": rsaKey(), "s": rsaSmall()}, wantN: 1},
		{name: "P-384 skipped", keys: map[string]any{"e": ecKey(), "p": p384}, wantN: 1},
		{name: "only unusable", keys: map[string]any{"p": p384}, wantErr: true},
		{name: "empty set", body: `{"keys":[]}`, wantErr: true},
		{name: "not json", body: `<html>`, wantErr: true},
		{name: "oct key skipped", body: `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, wantErr: true},
		{name: "enc key skipped", body: `{"keys":[{"kty":"EC","use":"enc","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, wantErr: true},
		{name: "point not on curve skipped", body: `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if tc.keys != nil {
				srv := &jwksServer{}
				srv.setKeys(t, tc.keys, tc.algs)
				body = srv.body
			}
			keys, err := parseJWKS(body, (&logBuffer{}).logger())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if len(keys) != tc.wantN {
				t.Fatalf("keys = %d, want %d", len(keys), tc.wantN)
			}
		})
	}
}

func TestJWKSOversized(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	srv.setBody(http.StatusOK, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", maxJWKSBytes)+`"}`))
	a := newAuth(t, Config{JWKSURL: srv.URL})
	if a.Ready() {
		t.Fatal("accepted an oversized jwks")
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"relative jwks url", Config{JWKSURL: "/jwks.json"}},
		{"ftp jwks url", Config{JWKSURL: "ftp://idp.example/jwks"}},
		{"negative leeway", Config{Secret: testSecret, Leeway: -time.Second}},
		{"negative floor", Config{Secret: testSecret, RefetchFloor: -time.Second}},
		{"role claim is registered", Config{Secret: testSecret, ProcessorRoleClaim: "sub"}},
		{"builtin without data dir", Config{}},
		{"builtin with foreign issuer", Config{DataDir: t.TempDir(), Issuer: "https://idp.example"}},
		{"builtin with audience", Config{DataDir: t.TempDir(), Audience: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := New(t.Context(), tc.cfg); err == nil {
				t.Fatalf("New succeeded in mode %q", a.Mode())
			}
		})
	}
}

// Without a kid every key of the token's type is tried, so IdPs that omit
// kid keep working across a rotation that publishes two keys.
func TestJWKSNoKidSeveralKeys(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey(), "rsa-2": rsaKey2(), "ec-1": ecKey()})
	a := newAuth(t, Config{JWKSURL: srv.URL})
	for _, key := range []any{rsaKey(), rsaKey2()} {
		if _, err := a.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, key, "", claims(nil))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaSmall(), "", claims(nil)))
	wantMessage(t, err, msgSignature)
	wantFetches(t, srv, 1)
}
