package auth

import (
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost"
)

// verifyClaims runs the claim checks of an authentic token. Identity checks
// come before time checks so that a token from the wrong issuer or audience
// is UNAUTHORIZED even when it has also expired: TOKEN_EXPIRED tells a
// client to refresh, which would not help it.
func (a *Authenticator) verifyClaims(c jwt.MapClaims) (Identity, *pentecost.Error) {
	if a.issuer != "" {
		if iss, _ := c["iss"].(string); iss != a.issuer {
			return Identity{}, unauthorized(msgIssuer)
		}
	}
	if a.cfg.Audience != "" && !audienceMatches(c, a.cfg.Audience) {
		return Identity{}, unauthorized(msgAudience)
	}
	sub, _ := c["sub"].(string)
	if sub == "" {
		return Identity{}, unauthorized(msgNoSub)
	}
	if strings.TrimSpace(sub) == "" {
		// Whitespace is nobody: as an owner it would be an identity any
		// issuer bug could share.
		return Identity{}, unauthorized(msgBlankSub)
	}
	if !timeClaimsInRange(c) {
		return Identity{}, unauthorized(msgTimeClaim)
	}
	if _, ok := c["exp"]; !ok && !a.cfg.AllowNoExp {
		// A token without exp would be valid forever, and a leaked one
		// could never be made useless short of changing the key.
		return Identity{}, unauthorized(msgNoExp)
	}
	if err := a.validator.Validate(c); err != nil {
		return Identity{}, timeError(err)
	}
	if exp, ok := c["exp"].(float64); ok && exp == 0 {
		// jwt reads exp 0 as "no exp"; taken literally it is 1970, and a
		// token must not become eternal through that reading.
		return Identity{}, timeError(jwt.ErrTokenExpired)
	}

	id := Identity{Subject: sub, Processor: hasProcessorRole(c[a.cfg.ProcessorRoleClaim])}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time.In(time.UTC)
	}
	return id, nil
}

// audienceMatches accepts an `aud` that contains want, or, for Cognito
// access tokens which carry no `aud`, a `client_id` equal to want. A token
// with an `aud` that does not match is refused even if its client_id does:
// the fallback is for tokens without an audience, not a second chance.
func audienceMatches(c jwt.MapClaims, want string) bool {
	aud, err := c.GetAudience()
	if err != nil {
		return false
	}
	if len(aud) > 0 {
		return slices.Contains(aud, want)
	}
	clientID, _ := c["client_id"].(string)
	return clientID == want
}

// hasProcessorRole accepts the role as a plain string (custom claims) or as
// one entry of an array (Cognito groups, Keycloak roles).
func hasProcessorRole(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ProcessorRole
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == ProcessorRole {
				return true
			}
		}
	}
	return false
}

// maxNumericDate is 9999-12-31T23:59:59Z. Beyond it jwt's conversion to
// time.Time overflows, turning an absurd far-future exp into a past one and
// a garbage token into a TOKEN_EXPIRED that tells the client to refresh.
const maxNumericDate = 253402300799

func timeClaimsInRange(c jwt.MapClaims) bool {
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := c[name].(float64); ok && (v > maxNumericDate || v < -maxNumericDate) {
			return false
		}
	}
	return true
}
