package protocoltest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// A token too large to verify gets the protocol's answer (4401, "token is
// too large") after the upgrade, whether it comes in the query or in the
// Authorization header, not a bare HTTP 431 the browser cannot read.
func TestOversizedTokenIsRefusedWith4401(t *testing.T) {
	n := start(t, nil)
	huge := strings.Repeat("a", 30<<10) + "." + strings.Repeat("b", 10) + "." + strings.Repeat("c", 10)
	c := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", huge))
	if ev := expectError(t, c, "UNAUTHORIZED"); ev.String("message") != "token is too large" {
		t.Fatalf("query token: %v", ev.JSON)
	}
	expectClose(t, c, 4401)

	h := dialH(t, n, q("action", "createSession", "sourceLanguage", "en"), http.Header{"Authorization": {"Bearer " + huge}})
	if ev := expectError(t, h, "UNAUTHORIZED"); ev.String("message") != "token is too large" {
		t.Fatalf("header token: %v", ev.JSON)
	}
	expectClose(t, h, 4401)
}

// The request line and headers together stay bounded (64 KiB): past that
// the HTTP layer answers 431 before anything else runs.
func TestRequestHeadersStayBounded(t *testing.T) {
	n := start(t, nil)
	_, err := client.Dial(ctx(t), n.WS(q("sessionId", absentID, "targetLanguage", "es", "pad", strings.Repeat("p", 80<<10))), client.DialOptions{})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("an 80 KiB request line: %v, want HTTP 431", err)
	}
}

// The same-host Origin check includes the scheme: an https page is not the
// same origin as the plain-HTTP server on its host, nor the reverse; behind
// a trusted proxy that terminated TLS, X-Forwarded-Proto says which scheme
// the browser used, and from anyone else it is not believed.
func TestOriginSchemeMustMatch(t *testing.T) {
	n := start(t, nil)
	_, id := speaker(t, n, "alice")
	host := strings.TrimPrefix(n.URL, "http://")
	join := q("sessionId", id, "targetLanguage", "es")
	ok := dialH(t, n, join, http.Header{"Origin": {"http://" + host}})
	expect(t, ok, "sessionJoined")
	for _, h := range []http.Header{
		{"Origin": {"https://" + host}},
		{"Origin": {"https://" + host}, "X-Forwarded-Proto": {"https"}}, // not from a trusted proxy
	} {
		c := dialH(t, n, join, h)
		expectError(t, c, "FORBIDDEN")
		expectClose(t, c, 4403)
	}

	p := start(t, func(c *server.Config) { c.TrustedProxies = "127.0.0.1/32" })
	_, pid := speaker(t, p, "alice")
	phost := strings.TrimPrefix(p.URL, "http://")
	pjoin := q("sessionId", pid, "targetLanguage", "es")
	behind := dialH(t, p, pjoin, http.Header{"Origin": {"https://" + phost}, "X-Forwarded-Proto": {"https"}})
	expect(t, behind, "sessionJoined")
	c := dialH(t, p, pjoin, http.Header{"Origin": {"http://" + phost}, "X-Forwarded-Proto": {"https"}})
	expectError(t, c, "FORBIDDEN")
	expectClose(t, c, 4403)
}

// hsToken signs claims with the test node's secret.
func hsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testserver.Secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A token must expire unless the operator says the issuer never sets exp
// (--jwt-allow-no-exp); a subject of only whitespace is nobody.
func TestTokenRules(t *testing.T) {
	n := start(t, nil)
	now := n.Clock.Now()
	create := func(tok string) string { return q("action", "createSession", "sourceLanguage", "en", "token", tok) }
	noExp := hsToken(t, jwt.MapClaims{"sub": "alice", "iat": now.Unix()})
	if ev := refusedWith(t, n, create(noExp), "UNAUTHORIZED", 4401); ev.String("message") != "token has no exp claim" {
		t.Fatalf("token without exp: %v", ev.JSON)
	}
	blank := hsToken(t, jwt.MapClaims{"sub": " \t", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if ev := refusedWith(t, n, create(blank), "UNAUTHORIZED", 4401); ev.String("message") != "token sub claim is blank" {
		t.Fatalf("blank sub: %v", ev.JSON)
	}

	lax := start(t, func(c *server.Config) { c.JWTAllowNoExp = true })
	c := dial(t, lax, create(hsToken(t, jwt.MapClaims{"sub": "alice", "iat": lax.Clock.Now().Unix()})))
	expect(t, c, "sessionCreated")
}
