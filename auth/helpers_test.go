package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
)

// t0 is the fake "now" of every test; tokens are built relative to it.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	testSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	testIssuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
	testAudience = "client-123"
)

// Key generation is slow under -race; every test shares these.
var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey    = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC() })
	ecKey2   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC() })
	rsaSmall = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// claims returns a valid claim set at t0; overrides replace or (nil) delete.
func claims(overrides map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "alice",
		"iss":   testIssuer,
		"aud":   testAudience,
		"iat":   t0.Unix(),
		"exp":   t0.Add(time.Hour).Unix(),
		"email": "alice@example.com",
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// jwksServer serves a mutable JWKS and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	body    []byte
	status  int
}

func newJWKSServer(t *testing.T, keys map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys, nil)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// setKeys publishes the public halves of keys (kid -> private key); algs
// optionally declares a JWK alg per kid.
func (s *jwksServer) setKeys(t *testing.T, keys map[string]any, algs map[string]string) {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, k := range keys {
		var pub any
		switch k := k.(type) {
		case *rsa.PrivateKey:
			pub = &k.PublicKey
		case *ecdsa.PrivateKey:
			pub = &k.PublicKey
		default:
			pub = k
		}
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig, ALG: jwkset.ALG(algs[kid])},
		})
		if err != nil {
			t.Fatalf("jwk: %v", err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(http.StatusOK, body)
}

func (s *jwksServer) setBody(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// logBuffer collects every log line, at every level, for leak checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewFakeClockAt(t0)
	}
	a, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// verifyCase is one row of the Verify tables.
type verifyCase struct {
	name      string
	token     func(t *testing.T) string
	wantCode  string // "" = success
	wantMsg   string // substring of the message
	wantID    *Identity
	processor bool
}

func runVerifyCases(t *testing.T, a *Authenticator, logs *logBuffer, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			id, err := a.Verify(context.Background(), tok)
			checkVerify(t, tok, id, err, tc)
			if logs != nil && len(tok) > 20 && strings.Contains(logs.String(), tok) {
				t.Errorf("token text reached the log")
			}
		})
	}
}

func checkVerify(t *testing.T, tok string, id Identity, err error, tc verifyCase) {
	t.Helper()
	if tc.wantCode == "" {
		if err != nil {
			t.Fatalf("Verify: unexpected error %v", err)
		}
		if id.Subject == "" {
			t.Fatalf("Verify: empty subject")
		}
		if tc.wantID != nil && id != *tc.wantID {
			t.Fatalf("identity = %+v, want %+v", id, *tc.wantID)
		}
		if id.Processor != tc.processor {
			t.Fatalf("processor = %v, want %v", id.Processor, tc.processor)
		}
		return
	}
	var pe *pentecost.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *pentecost.Error", err, err)
	}
	if pe.Code != tc.wantCode {
		t.Fatalf("code = %s (%q), want %s", pe.Code, pe.Message, tc.wantCode)
	}
	if !strings.Contains(pe.Message, tc.wantMsg) {
		t.Fatalf("message = %q, want it to contain %q", pe.Message, tc.wantMsg)
	}
	if id != (Identity{}) {
		t.Fatalf("identity %+v returned with an error", id)
	}
	text := err.Error()
	for _, secret := range []string{"alice@example.com", "alice"} {
		if strings.Contains(text, secret) {
			t.Fatalf("error %q leaks claim value %q", text, secret)
		}
	}
	if len(tok) > 20 && strings.Contains(text, tok) {
		t.Fatalf("error leaks the token")
	}
}

func tokenOf(s string) func(*testing.T) string { return func(*testing.T) string { return s } }

func isExpired(err error) bool { return pentecost.ErrorCode(err) == pentecost.ErrTokenExpired }
