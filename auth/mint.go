package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"
)

type minter struct {
	method    jwt.SigningMethod
	key       any
	kid       string
	issuer    string
	audience  string
	roleClaim string
	clock     clockwork.Clock
}

// Mint signs a token for sub valid for ttl, carrying the processor role
// when processor is true. The token passes this Authenticator's own checks:
// it carries the configured issuer and audience. Builtin mode signs ES256
// with the data-dir key; secret modes sign HS256. In jwks mode the server
// holds no signing key and Mint returns ErrMintUnsupported.
func (a *Authenticator) Mint(sub string, ttl time.Duration, processor bool) (string, error) {
	m := minter{roleClaim: a.cfg.ProcessorRoleClaim, clock: a.cfg.Clock}
	switch {
	case a.builtin != nil:
		m.method, m.key, m.kid, m.issuer = jwt.SigningMethodES256, a.builtin.priv, a.builtin.kid, BuiltinIssuer
	case a.secret != nil:
		m.method, m.key, m.audience = jwt.SigningMethodHS256, a.secret, a.cfg.Audience
		m.issuer = a.cfg.Issuer
		if m.issuer == "" {
			m.issuer = BuiltinIssuer
		}
	default:
		return "", ErrMintUnsupported
	}
	return m.mint(sub, ttl, processor)
}

// MintBuiltin mints with the built-in issuer's key in dataDir without a
// running server (`pentecost token --sub NAME`, CLI clients). It never
// creates the key (ErrNoKey): only the server does, on its first start, so
// a command run in the wrong folder fails at once instead of signing with a
// key the server has never seen. The role goes in the default "role" claim;
// a server run with another --processor-role-claim should mint through
// New(...).Mint instead.
func MintBuiltin(dataDir, sub string, ttl time.Duration, processor bool) (string, error) {
	key, err := loadKey(dataDir)
	if err != nil {
		return "", err
	}
	m := minter{
		method: jwt.SigningMethodES256, key: key.priv, kid: key.kid, issuer: BuiltinIssuer,
		roleClaim: defaultRoleClaim, clock: clockwork.NewRealClock(),
	}
	return m.mint(sub, ttl, processor)
}

func (m minter) mint(sub string, ttl time.Duration, processor bool) (string, error) {
	if sub == "" {
		return "", errors.New("auth: mint: sub is required")
	}
	if ttl <= 0 {
		return "", errors.New("auth: mint: ttl must be positive")
	}
	now := m.clock.Now()
	claims := jwt.MapClaims{
		"sub": sub,
		"iss": m.issuer,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if m.audience != "" {
		claims["aud"] = m.audience
	}
	if processor {
		claims[m.roleClaim] = ProcessorRole
	}
	tok := jwt.NewWithClaims(m.method, claims)
	if m.kid != "" {
		tok.Header["kid"] = m.kid
	}
	s, err := tok.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("auth: mint: sign: %w", err)
	}
	return s, nil
}
