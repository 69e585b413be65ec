// Package auth verifies the JWTs that speakers and processors present, and
// mints tokens when the server is its own issuer.
//
// Three sources of trust, chosen by Config (docs/configuration.md):
// an OIDC/Cognito JWKS (RS256, ES256), an HS256 shared secret, both at once,
// or, when neither is configured, a built-in ES256 issuer whose key lives in
// the data directory. Each algorithm is bound to exactly one source, so a
// token can never be checked with a key meant for another algorithm
// (the classic RS256-public-key-as-HMAC-secret confusion).
//
// The JWKS cache is written here rather than taken from keyfunc/v3. keyfunc
// delegates the unknown-kid refetch limit to jwkset's HTTP client, which uses
// a golang.org/x/time/rate.Limiter: that limiter reads the wall clock and
// makes the caller wait for the next slot instead of failing fast. The
// protocol wants "at most one synchronous refetch every 2 s" with the token
// rejected otherwise, and the tests need to drive that with a fake clock;
// neither is possible through keyfunc. jwkset is still used to parse and
// validate the JWK material, which is the part worth reusing.
//
// Every verification failure is a *pentecost.Error whose message names the
// check that failed and nothing else: messages reach clients and logs, and
// neither may learn the token or its claims.
package auth
