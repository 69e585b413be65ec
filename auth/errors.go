package auth

import (
	"errors"
	"slices"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost"
)

// Messages are constants on purpose: anything built from the token could
// carry claim values (an email) into a client reply or a log line.
const (
	msgMissing         = "token is missing"
	msgTooLarge        = "token is too large"
	msgMalformed       = "token is malformed"
	msgAlgorithm       = "token signing algorithm is not accepted"
	msgKeyMismatch     = "token signing algorithm does not match its key"
	msgSignature       = "token signature is invalid"
	msgUnknownKey      = "token signing key is unknown"
	msgKeysUnavailable = "cannot verify token: signing keys unavailable"
	msgExpired         = "token has expired"
	msgNotYetValid     = "token is not valid yet"
	msgIssuedInFuture  = "token was issued in the future"
	msgTimeClaim       = "token has a malformed time claim"
	msgIssuer          = "token issuer does not match"
	msgAudience        = "token audience does not match"
	msgNoSub           = "token has no sub claim"
	msgBlankSub        = "token sub claim is blank"
	msgNoExp           = "token has no exp claim"
	msgInvalid         = "token is invalid"
)

func unauthorized(msg string) *pentecost.Error {
	return &pentecost.Error{Code: pentecost.ErrUnauthorized, Message: msg}
}

// ErrMintUnsupported is returned by Mint when the server only verifies tokens
// of an external identity provider and so holds no signing key.
var ErrMintUnsupported = errors.New("auth: cannot mint tokens: tokens come from the external identity provider (jwks mode)")

// parseError turns what jwt's parser reports into a client-facing error. The
// jwt error itself is not attached: its text can quote decoder details of the
// token, and the message already says which check failed.
func parseError(err error, tok *jwt.Token, accepted []string) *pentecost.Error {
	if e := pentecost.AsError(err); e != nil {
		// Raised by our key lookup; it already names the check.
		return e
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized(msgMalformed)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The alg header is missing or names no algorithm jwt knows.
		return unauthorized(msgAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// jwt reports a disallowed alg (none included) as a bad signature;
		// telling them apart makes misconfigured IdPs easy to diagnose.
		if tok != nil && tok.Method != nil && !slices.Contains(accepted, tok.Method.Alg()) {
			return unauthorized(msgAlgorithm)
		}
		return unauthorized(msgSignature)
	}
	return unauthorized(msgInvalid)
}

// timeError maps the validator's verdict on exp/nbf/iat. A token that is
// both not yet valid and expired is reported as not valid: refreshing an
// expired token would not help it.
func timeError(err error) *pentecost.Error {
	switch {
	case errors.Is(err, jwt.ErrInvalidType):
		return unauthorized(msgTimeClaim)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized(msgNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized(msgIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenExpired):
		return &pentecost.Error{Code: pentecost.ErrTokenExpired, Message: msgExpired}
	}
	return unauthorized(msgInvalid)
}
