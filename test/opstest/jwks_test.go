package opstest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

type idp struct {
	keys map[string]*rsa.PrivateKey
	down atomic.Bool
	srv  *httptest.Server
}

func newIDP(t *testing.T, kids ...string) *idp {
	t.Helper()
	p := &idp{keys: map[string]*rsa.PrivateKey{}}
	for _, kid := range kids {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		p.keys[kid] = k
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var set []map[string]string
		for kid, k := range p.keys {
			set = append(set, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) token(t *testing.T, kid, sub string, now time.Time, extra jwt.MapClaims) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "iss": "https://idp.example", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(p.keys[kid])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// When the identity provider cannot be reached, speakers get a clear
// UNAUTHORIZED while listeners still join and hear the session.
func TestJWKSOutage(t *testing.T) {
	p := newIDP(t, "k1", "k2")
	// The provider publishes only k1 at first; k2 appears later, after a
	// rotation the node has not seen.
	k2 := p.keys["k2"]
	delete(p.keys, "k2")
	clock := clockwork.NewFakeClockAt(time.Now())
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.JWKSURL = p.srv.URL
	cfg.JWTIssuer = "https://idp.example"
	cfg.JWTAudience = "pentecost-app"
	n := testserver.StartConfig(t, cfg, clock)

	// A Cognito access token: no aud, client_id instead.
	tok := p.token(t, "k1", "alice", clock.Now(), map[string]any{"client_id": "pentecost-app", "token_use": "access"})
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", tok))
	id := expect(t, sp, "sessionCreated").String("sessionId")

	p.down.Store(true)
	p.keys["k2"] = k2
	clock.Advance(3 * time.Second) // past the refetch floor
	rotated := p.token(t, "k2", "bob", clock.Now(), map[string]any{"aud": "pentecost-app"})
	ev := refused(t, dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", rotated)), "UNAUTHORIZED", 4401)
	if msg := ev.String("message"); msg == "" || len(msg) > 200 {
		t.Fatalf("message should say which check failed: %q", msg)
	}
	li := listener(t, n, id, "es")
	if err := sp.SendBinary(ctx(t), []byte("still live")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, li); string(f.Chunk) != "still live" {
		t.Fatalf("audio: %q", f.Chunk)
	}

	// The provider returns: the rotated key verifies without a restart.
	p.down.Store(false)
	clock.Advance(3 * time.Second)
	sp2 := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", rotated))
	expect(t, sp2, "sessionCreated")
}
