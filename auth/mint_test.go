package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"
)

func TestMint(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey()})
	tests := []struct {
		name      string
		cfg       Config
		sub       string
		ttl       time.Duration
		processor bool
		wantErr   error // nil = success; errAny = any error
		wantAlg   string
	}{
		{name: "secret", cfg: Config{Secret: testSecret}, sub: "alice", ttl: time.Hour, wantAlg: "HS256"},
		{name: "secret processor", cfg: Config{Secret: testSecret}, sub: "engine", ttl: time.Hour, processor: true, wantAlg: "HS256"},
		{name: "secret with issuer and audience", cfg: Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience}, sub: "alice", ttl: time.Hour, wantAlg: "HS256"},
		{name: "secret custom role claim", cfg: Config{Secret: testSecret, ProcessorRoleClaim: "custom:role"}, sub: "engine", ttl: time.Hour, processor: true, wantAlg: "HS256"},
		{name: "jwks+secret", cfg: Config{Secret: testSecret, JWKSURL: srv.URL}, sub: "alice", ttl: time.Hour, wantAlg: "HS256"},
		{name: "builtin", cfg: Config{DataDir: "tmp"}, sub: "alice", ttl: time.Hour, wantAlg: "ES256"},
		{name: "builtin processor", cfg: Config{DataDir: "tmp"}, sub: "engine", ttl: time.Hour, processor: true, wantAlg: "ES256"},
		{name: "jwks only", cfg: Config{JWKSURL: srv.URL}, sub: "alice", ttl: time.Hour, wantErr: ErrMintUnsupported},
		{name: "empty sub", cfg: Config{Secret: testSecret}, sub: "", ttl: time.Hour, wantErr: errAny},
		{name: "zero ttl", cfg: Config{Secret: testSecret}, sub: "alice", wantErr: errAny},
		{name: "negative ttl", cfg: Config{Secret: testSecret}, sub: "alice", ttl: -time.Hour, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.DataDir == "tmp" {
				tc.cfg.DataDir = t.TempDir()
			}
			clock := clockwork.NewFakeClockAt(t0)
			tc.cfg.Clock = clock
			a := newAuth(t, tc.cfg)
			tok, err := a.Mint(tc.sub, tc.ttl, tc.processor)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Method.Alg() != tc.wantAlg {
				t.Fatalf("alg %s, want %s", parsed.Method.Alg(), tc.wantAlg)
			}
			id, err := a.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("own token rejected: %v", err)
			}
			want := Identity{Subject: tc.sub, Processor: tc.processor, ExpiresAt: t0.Add(tc.ttl)}
			if id != want {
				t.Fatalf("identity %+v, want %+v", id, want)
			}
			// Past its ttl (and the leeway) the token is expired.
			clock.Advance(tc.ttl + time.Minute)
			if _, err := a.Verify(context.Background(), tok); err == nil || !isExpired(err) {
				t.Fatalf("after ttl: %v", err)
			}
		})
	}
}

var errAny = errors.New("any error")
