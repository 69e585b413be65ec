package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
)

// FuzzVerify feeds arbitrary strings to Verify in secret and builtin mode:
// no panic, and every failure is UNAUTHORIZED or TOKEN_EXPIRED with a
// message that does not echo the input.
func FuzzVerify(f *testing.F) {
	clock := clockwork.NewFakeClockAt(t0)
	secret, err := New(context.Background(), Config{Secret: testSecret, Clock: clock})
	if err != nil {
		f.Fatal(err)
	}
	builtin, err := New(context.Background(), Config{DataDir: f.TempDir(), Clock: clock})
	if err != nil {
		f.Fatal(err)
	}

	valid, err := secret.Mint("alice", time.Hour, true)
	if err != nil {
		f.Fatal(err)
	}
	validBuiltin, err := builtin.Mint("alice", time.Hour, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(validBuiltin)
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", jwt.MapClaims{"sub": "a", "exp": t0.Add(-time.Hour).Unix()}))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", jwt.MapClaims{"sub": "a"}))
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.eyJzdWIiOjF9.AAAA")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjFlMzAwLCJzdWIiOiJ4In0.x")
	f.Add("eyJhbGciOiJIUzI1NiJ9.bnVsbA.x") // claims: null

	f.Fuzz(func(t *testing.T, token string) {
		for _, a := range []*Authenticator{secret, builtin} {
			id, err := a.Verify(context.Background(), token)
			if err == nil {
				if id.Subject == "" {
					t.Fatalf("%s: accepted a token without subject", a.Mode())
				}
				continue
			}
			var pe *pentecost.Error
			if !errors.As(err, &pe) {
				t.Fatalf("%s: error %v (%T) is not a *pentecost.Error", a.Mode(), err, err)
			}
			if pe.Code != pentecost.ErrUnauthorized && pe.Code != pentecost.ErrTokenExpired {
				t.Fatalf("%s: code %s", a.Mode(), pe.Code)
			}
			if pe.Message == "" {
				t.Fatalf("%s: empty message", a.Mode())
			}
			// Messages are short constants; a long input found in one was echoed.
			if len(token) > 64 && strings.Contains(err.Error(), token) {
				t.Fatalf("%s: error echoes the token", a.Mode())
			}
		}
	})
}
