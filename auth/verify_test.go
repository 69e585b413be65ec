package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost"
)

const (
	unauth  = pentecost.ErrUnauthorized
	expired = pentecost.ErrTokenExpired
)

// hs signs with the test secret.
func hs(c jwt.MapClaims) func(*testing.T) string {
	return func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
}

// rs and es sign with the JWKS keys published under kids "rsa-1" and "ec-1".
func rs(c jwt.MapClaims) func(*testing.T) string {
	return func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", c) }
}

func es(c jwt.MapClaims) func(*testing.T) string {
	return func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey(), "ec-1", c) }
}

func noneToken(t *testing.T) string {
	return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil))
}

// hmacWithPublicKey is the algorithm-confusion attack: an HS256 token whose
// HMAC key is the RSA public key an attacker can download from the JWKS.
func hmacWithPublicKey(t *testing.T) string {
	der, err := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return sign(t, jwt.SigningMethodHS256, pemBytes, "rsa-1", claims(nil))
}

// tamper swaps the payload of a validly signed token.
func tamper(tok func(*testing.T) string) func(*testing.T) string {
	return func(t *testing.T) string {
		parts := strings.Split(tok(t), ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","iss":"` + testIssuer + `","aud":"` + testAudience + `"}`))
		return strings.Join(parts, ".")
	}
}

func unix(d time.Duration) int64 { return t0.Add(d).Unix() }

// commonClaimCases hold for every mode; sig turns claims into a token
// signed the way the mode accepts.
func commonClaimCases(sig func(jwt.MapClaims) func(*testing.T) string) []verifyCase {
	exp := time.Unix(unix(time.Hour), 0).UTC()
	return []verifyCase{
		{name: "valid", token: sig(claims(nil)), wantID: &Identity{Subject: "alice", ExpiresAt: exp}},
		{name: "processor role string", token: sig(claims(map[string]any{"role": "processor"})), processor: true},
		{name: "processor role in array", token: sig(claims(map[string]any{"role": []string{"speaker", "processor"}})), processor: true},
		{name: "other role", token: sig(claims(map[string]any{"role": "admin"}))},
		{name: "role of wrong type", token: sig(claims(map[string]any{"role": 7}))},
		{name: "no exp", token: sig(claims(map[string]any{"exp": nil})), wantCode: unauth, wantMsg: "no exp claim"},
		{name: "expired", token: sig(claims(map[string]any{"exp": unix(-time.Minute)})), wantCode: expired, wantMsg: "expired"},
		{name: "exp zero", token: sig(claims(map[string]any{"exp": 0})), wantCode: expired, wantMsg: "expired"},
		{name: "exp negative", token: sig(claims(map[string]any{"exp": -5})), wantCode: expired, wantMsg: "expired"},
		{name: "exp year 9999", token: sig(claims(map[string]any{"exp": 253402300799}))},
		{name: "exp beyond year 9999", token: sig(claims(map[string]any{"exp": 1e300})), wantCode: unauth, wantMsg: "malformed time claim"},
		{name: "iat absurdly negative", token: sig(claims(map[string]any{"iat": -1e300})), wantCode: unauth, wantMsg: "malformed time claim"},
		{name: "expired within leeway", token: sig(claims(map[string]any{"exp": unix(-20 * time.Second)}))},
		{name: "nbf in future", token: sig(claims(map[string]any{"nbf": unix(time.Minute)})), wantCode: unauth, wantMsg: "not valid yet"},
		{name: "nbf within leeway", token: sig(claims(map[string]any{"nbf": unix(20 * time.Second)}))},
		{name: "iat in future", token: sig(claims(map[string]any{"iat": unix(time.Minute)})), wantCode: unauth, wantMsg: "issued in the future"},
		{name: "iat within leeway", token: sig(claims(map[string]any{"iat": unix(20 * time.Second)}))},
		{name: "nbf future and expired", token: sig(claims(map[string]any{"nbf": unix(time.Minute), "exp": unix(-time.Minute)})), wantCode: unauth, wantMsg: "not valid yet"},
		{name: "exp not a number", token: sig(claims(map[string]any{"exp": "tomorrow"})), wantCode: unauth, wantMsg: "malformed time claim"},
		{name: "no sub", token: sig(claims(map[string]any{"sub": nil})), wantCode: unauth, wantMsg: "no sub claim"},
		{name: "empty sub", token: sig(claims(map[string]any{"sub": ""})), wantCode: unauth, wantMsg: "no sub claim"},
		{name: "blank sub", token: sig(claims(map[string]any{"sub": " "})), wantCode: unauth, wantMsg: "sub claim is blank"},
		{name: "whitespace sub", token: sig(claims(map[string]any{"sub": "\t\n\u00a0\u2003"})), wantCode: unauth, wantMsg: "sub claim is blank"},
		{name: "sub with spaces inside", token: sig(claims(map[string]any{"sub": "pastor john"})), wantID: &Identity{Subject: "pastor john", ExpiresAt: exp}},
		{name: "sub not a string", token: sig(claims(map[string]any{"sub": 42})), wantCode: unauth, wantMsg: "no sub claim"},
		{name: "wrong issuer", token: sig(claims(map[string]any{"iss": "https://evil.example"})), wantCode: unauth, wantMsg: "issuer does not match"},
		{name: "issuer differs in case", token: sig(claims(map[string]any{"iss": strings.ToUpper(testIssuer)})), wantCode: unauth, wantMsg: "issuer does not match"},
		{name: "issuer with trailing slash", token: sig(claims(map[string]any{"iss": testIssuer + "/"})), wantCode: unauth, wantMsg: "issuer does not match"},
		{name: "no issuer", token: sig(claims(map[string]any{"iss": nil})), wantCode: unauth, wantMsg: "issuer does not match"},
		{name: "expired and wrong issuer", token: sig(claims(map[string]any{"iss": "x", "exp": unix(-time.Hour)})), wantCode: unauth, wantMsg: "issuer does not match"},
		{name: "expired and no sub", token: sig(claims(map[string]any{"sub": nil, "exp": unix(-time.Hour)})), wantCode: unauth, wantMsg: "no sub claim"},
		{name: "wrong audience", token: sig(claims(map[string]any{"aud": "other-client"})), wantCode: unauth, wantMsg: "audience does not match"},
		{name: "audience array containing", token: sig(claims(map[string]any{"aud": []string{"a", testAudience}}))},
		{name: "audience array without", token: sig(claims(map[string]any{"aud": []string{"a", "b"}})), wantCode: unauth, wantMsg: "audience does not match"},
		{name: "cognito access token client_id", token: sig(claims(map[string]any{"aud": nil, "client_id": testAudience, "token_use": "access"}))},
		{name: "cognito access token wrong client_id", token: sig(claims(map[string]any{"aud": nil, "client_id": "other"})), wantCode: unauth, wantMsg: "audience does not match"},
		{name: "no aud no client_id", token: sig(claims(map[string]any{"aud": nil})), wantCode: unauth, wantMsg: "audience does not match"},
		{name: "wrong aud with right client_id", token: sig(claims(map[string]any{"aud": "other", "client_id": testAudience})), wantCode: unauth, wantMsg: "audience does not match"},
		{name: "tampered payload", token: tamper(sig(claims(nil))), wantCode: unauth, wantMsg: "signature is invalid"},
	}
}

// malformedCases hold for every mode: nothing about keys is reached.
var malformedCases = []verifyCase{
	{name: "empty", token: tokenOf(""), wantCode: unauth, wantMsg: "missing"},
	{name: "blank", token: tokenOf("   "), wantCode: unauth, wantMsg: "missing"},
	{name: "one segment", token: tokenOf("abc"), wantCode: unauth, wantMsg: "malformed"},
	{name: "four segments", token: tokenOf("a.b.c.d"), wantCode: unauth, wantMsg: "malformed"},
	{name: "garbage segments", token: tokenOf("a.b.c"), wantCode: unauth, wantMsg: "malformed"},
	{name: "header not json", token: tokenOf(base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.c2ln"), wantCode: unauth, wantMsg: "malformed"},
	{name: "no alg", token: tokenOf(base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + ".e30.c2ln"), wantCode: unauth, wantMsg: "algorithm is not accepted"},
	{name: "unknown alg", token: tokenOf(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX999"}`)) + ".e30.c2ln"), wantCode: unauth, wantMsg: "algorithm is not accepted"},
	{name: "alg none", token: noneToken, wantCode: unauth, wantMsg: "algorithm is not accepted"},
	{name: "too large", token: tokenOf(strings.Repeat("a", maxTokenBytes+1)), wantCode: unauth, wantMsg: "too large"},
	{name: "RS384", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS384, rsaKey(), "rsa-1", claims(nil)) }, wantCode: unauth, wantMsg: "algorithm is not accepted"},
	{name: "PS256", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, rsaKey(), "rsa-1", claims(nil)) }, wantCode: unauth, wantMsg: "algorithm is not accepted"},
}

func TestVerifySecret(t *testing.T) {
	logs := &logBuffer{}
	a := newAuth(t, Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, Logger: logs.logger()})
	if a.Mode() != ModeSecret || !a.Ready() {
		t.Fatalf("mode %q ready %v", a.Mode(), a.Ready())
	}
	cases := append(commonClaimCases(hs), malformedCases...)
	cases = append(cases,
		verifyCase{name: "wrong secret", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), "", claims(nil))
		}, wantCode: unauth, wantMsg: "signature is invalid"},
		verifyCase{name: "RS256 without jwks", token: rs(claims(nil)), wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "ES256 without jwks", token: es(claims(nil)), wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "HS384", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS384, []byte(testSecret), "", claims(nil))
		}, wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "bearer with spaces", token: func(t *testing.T) string { return "  " + hs(claims(nil))(t) + "\n" }},
	)
	runVerifyCases(t, a, logs, cases)
	if strings.Contains(logs.String(), "alice@example.com") {
		t.Errorf("claim value reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "issuer does not match") {
		t.Errorf("failed check not logged:\n%s", logs.String())
	}
}

func TestVerifyJWKS(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey(), "ec-1": ecKey()})
	logs := &logBuffer{}
	a := newAuth(t, Config{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience, Logger: logs.logger()})
	if a.Mode() != ModeJWKS || !a.Ready() {
		t.Fatalf("mode %q ready %v", a.Mode(), a.Ready())
	}
	cases := append(commonClaimCases(rs), malformedCases...)
	for _, c := range commonClaimCases(es) {
		c.name = "ES256 " + c.name
		cases = append(cases, c)
	}
	cases = append(cases,
		verifyCase{name: "HS256 in jwks mode", token: hs(claims(nil)), wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "HS256 keyed with the RSA public key", token: hmacWithPublicKey, wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "RS256 naming the EC kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey(), "ec-1", claims(nil))
		}, wantCode: unauth, wantMsg: "does not match its key"},
		verifyCase{name: "ES256 naming the RSA kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ecKey(), "rsa-1", claims(nil))
		}, wantCode: unauth, wantMsg: "does not match its key"},
		verifyCase{name: "RS256 by another key under a known kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa-1", claims(nil))
		}, wantCode: unauth, wantMsg: "signature is invalid"},
		verifyCase{name: "ES256 by another key under a known kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ecKey2(), "ec-1", claims(nil))
		}, wantCode: unauth, wantMsg: "signature is invalid"},
		verifyCase{name: "unknown kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa-9", claims(nil))
		}, wantCode: unauth, wantMsg: "signing key is unknown"},
		verifyCase{name: "RS256 without kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims(nil))
		}},
		verifyCase{name: "ES256 without kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ecKey(), "", claims(nil))
		}},
		verifyCase{name: "kid not a string", token: func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["kid"] = 5
			s, err := tok.SignedString(rsaKey())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantCode: unauth, wantMsg: "malformed"},
		verifyCase{name: "cognito id token", token: rs(claims(map[string]any{"token_use": "id", "cognito:username": "alice"}))},
	)
	runVerifyCases(t, a, logs, cases)
	if strings.Contains(logs.String(), "alice@example.com") {
		t.Errorf("claim value reached the log")
	}
}

func TestVerifyJWKSAndSecret(t *testing.T) {
	srv := newJWKSServer(t, map[string]any{"rsa-1": rsaKey(), "ec-1": ecKey()})
	a := newAuth(t, Config{JWKSURL: srv.URL, Secret: testSecret, Issuer: testIssuer, Audience: testAudience})
	if a.Mode() != ModeJWKSSecret {
		t.Fatalf("mode %q", a.Mode())
	}
	runVerifyCases(t, a, nil, []verifyCase{
		{name: "HS256", token: hs(claims(nil))},
		{name: "RS256", token: rs(claims(nil))},
		{name: "ES256", token: es(claims(nil))},
		{name: "HS256 keyed with the RSA public key", token: hmacWithPublicKey, wantCode: unauth, wantMsg: "signature is invalid"},
		{name: "HS256 keyed with the secret but naming a jwks kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "rsa-1", claims(nil))
		}},
		{name: "RS256 tampered", token: tamper(rs(claims(nil))), wantCode: unauth, wantMsg: "signature is invalid"},
		{name: "HS256 expired", token: hs(claims(map[string]any{"exp": unix(-time.Hour)})), wantCode: expired, wantMsg: "expired"},
		{name: "alg none", token: noneToken, wantCode: unauth, wantMsg: "algorithm is not accepted"},
	})
}

func TestVerifyBuiltin(t *testing.T) {
	dir := t.TempDir()
	logs := &logBuffer{}
	a := newAuth(t, Config{DataDir: dir, Logger: logs.logger()})
	if a.Mode() != ModeBuiltin || !a.Ready() {
		t.Fatalf("mode %q ready %v", a.Mode(), a.Ready())
	}
	priv, kid := a.builtin.priv, a.builtin.kid
	bi := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string {
			c = jwt.MapClaims(copyMap(c))
			if _, ok := c["iss"]; ok && c["iss"] == testIssuer {
				c["iss"] = BuiltinIssuer
			}
			delete(c, "aud") // the built-in issuer has no audience
			return sign(t, jwt.SigningMethodES256, priv, kid, c)
		}
	}
	cases := []verifyCase{}
	for _, c := range commonClaimCases(bi) {
		if strings.Contains(c.name, "aud") || strings.Contains(c.name, "client_id") {
			continue // audience is not configurable in builtin mode
		}
		cases = append(cases, c)
	}
	cases = append(cases, malformedCases...)
	cases = append(cases,
		verifyCase{name: "minted", token: func(t *testing.T) string {
			s, err := a.Mint("bob", time.Hour, false)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wantID: &Identity{Subject: "bob", ExpiresAt: t0.Add(time.Hour)}},
		verifyCase{name: "minted processor", token: func(t *testing.T) string {
			s, err := a.Mint("engine-1", time.Hour, true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, processor: true},
		verifyCase{name: "no kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, priv, "", claims(map[string]any{"iss": BuiltinIssuer, "aud": nil}))
		}},
		verifyCase{name: "other key, same kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ecKey(), kid, claims(map[string]any{"iss": BuiltinIssuer, "aud": nil}))
		}, wantCode: unauth, wantMsg: "signature is invalid"},
		verifyCase{name: "other kid", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, priv, "someone-else", claims(map[string]any{"iss": BuiltinIssuer, "aud": nil}))
		}, wantCode: unauth, wantMsg: "signing key is unknown"},
		verifyCase{name: "HS256", token: hs(claims(map[string]any{"iss": BuiltinIssuer, "aud": nil})), wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "RS256", token: rs(claims(map[string]any{"iss": BuiltinIssuer, "aud": nil})), wantCode: unauth, wantMsg: "algorithm is not accepted"},
		verifyCase{name: "foreign issuer", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, priv, kid, claims(map[string]any{"aud": nil}))
		}, wantCode: unauth, wantMsg: "issuer does not match"},
	)
	runVerifyCases(t, a, logs, cases)
}

func copyMap(m jwt.MapClaims) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestVerifyCustomRoleClaim(t *testing.T) {
	a := newAuth(t, Config{Secret: testSecret, ProcessorRoleClaim: "cognito:groups"})
	runVerifyCases(t, a, nil, []verifyCase{
		{name: "group array", token: hs(claims(map[string]any{"cognito:groups": []string{"admins", "processor"}})), processor: true},
		{name: "default claim ignored", token: hs(claims(map[string]any{"role": "processor"}))},
		{name: "no issuer or audience configured", token: hs(claims(map[string]any{"iss": "anyone", "aud": "anything"}))},
	})
}

// AllowNoExp, for issuers that never set exp, accepts a token without one;
// every other check stands, an exp that is there included.
func TestAllowNoExp(t *testing.T) {
	a := newAuth(t, Config{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, AllowNoExp: true})
	hs := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	}
	runVerifyCases(t, a, nil, []verifyCase{
		{name: "no exp", token: hs(claims(map[string]any{"exp": nil})), wantID: &Identity{Subject: "alice"}},
		{name: "expired", token: hs(claims(map[string]any{"exp": unix(-time.Minute)})), wantCode: expired, wantMsg: "expired"},
		{name: "blank sub", token: hs(claims(map[string]any{"exp": nil, "sub": "  "})), wantCode: unauth, wantMsg: "sub claim is blank"},
	})
}

// Minted tokens always expire, whatever the mode.
func TestMintedTokensCarryExp(t *testing.T) {
	for _, cfg := range []Config{{Secret: testSecret}, {DataDir: t.TempDir()}} {
		a := newAuth(t, cfg)
		tok, err := a.Mint("alice", time.Hour, false)
		if err != nil {
			t.Fatal(err)
		}
		id, err := a.Verify(context.Background(), tok)
		if err != nil || id.ExpiresAt.IsZero() {
			t.Fatalf("%s: minted token verified as %+v, %v; want an exp", a.Mode(), id, err)
		}
	}
}
