package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
)

// Modes reported by Mode.
const (
	ModeJWKS       = "jwks"
	ModeSecret     = "secret"
	ModeJWKSSecret = "jwks+secret"
	ModeBuiltin    = "builtin"
)

// ProcessorRole is the claim value that marks a translation processor.
const ProcessorRole = "processor"

const (
	defaultRoleClaim       = "role"
	defaultRefetchFloor    = 2 * time.Second
	defaultLeeway          = 30 * time.Second
	defaultRefreshInterval = time.Hour
	defaultHTTPTimeout     = 10 * time.Second

	// Real tokens are well under 4 KiB; the cap keeps a hostile client from
	// making us base64- and JSON-decode megabytes per connection attempt.
	maxTokenBytes = 16 << 10

	// Short HS256 secrets can be brute-forced offline from one token.
	minSecretBytes = 32
)

// Identity is who a verified token speaks for.
type Identity struct {
	Subject   string    // the JWT `sub`
	Processor bool      // the processor-role claim has the value "processor"
	ExpiresAt time.Time // zero if the token has no exp
}

// Config selects and tunes the source of trust. Zero durations mean the
// default.
type Config struct {
	JWKSURL  string // verify RS256/ES256 against this JWKS (OIDC/Cognito)
	Issuer   string // when set, `iss` must equal it exactly
	Audience string // when set, `aud` must contain it, or (no `aud`) `client_id` must equal it
	Secret   string // HS256 shared secret
	DataDir  string // built-in issuer keeps its key here when neither JWKSURL nor Secret is set

	// AllowNoExp accepts tokens without an exp claim, for issuers that
	// never set one. By default a token must expire.
	AllowNoExp bool

	// ProcessorRoleClaim names the claim whose value "processor" (a string,
	// or an array of strings containing it) marks a processor. Default "role".
	ProcessorRoleClaim string

	Clock        clockwork.Clock // default real clock; drives exp/nbf/iat checks and the refetch floor
	HTTPClient   *http.Client    // for the JWKS; default has a 10 s timeout
	RefetchFloor time.Duration   // default 2s: at most one JWKS fetch per interval for unknown kids
	Leeway       time.Duration   // default 30s of clock skew allowed on exp/nbf/iat

	// RefreshInterval is how often the JWKS is refreshed in the background,
	// so that revoked keys disappear without waiting for an unknown kid.
	// Default 1h.
	RefreshInterval time.Duration

	Logger *slog.Logger
}

// Authenticator verifies tokens, and mints them in secret and builtin modes.
// It is safe for concurrent use.
type Authenticator struct {
	mode      string
	cfg       Config
	issuer    string   // expected iss; empty = not checked
	accepted  []string // algorithms this mode accepts at all
	secret    []byte
	jwks      *jwksCache
	builtin   *builtinKey
	parser    *jwt.Parser
	validator *jwt.Validator
	log       *slog.Logger
}

// New builds the verifier.
//
// With neither JWKSURL nor Secret it runs the built-in issuer: it loads, or
// on first start creates (mode 0600), an ES256 key in DataDir. An unreadable
// data dir or a corrupt key file is an error; the key is never silently
// replaced, because that would invalidate every token handed out.
//
// With JWKSURL it fetches the JWKS once now. A failed first fetch is only
// logged: the IdP may come up after us, and unknown kids retry on demand.
// The keys are refreshed in the background until ctx is done.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, issuer: cfg.Issuer, log: cfg.Logger}

	switch {
	case cfg.JWKSURL != "" && cfg.Secret != "":
		a.mode = ModeJWKSSecret
	case cfg.JWKSURL != "":
		a.mode = ModeJWKS
	case cfg.Secret != "":
		a.mode = ModeSecret
	default:
		a.mode = ModeBuiltin
	}

	if cfg.Secret != "" {
		a.secret = []byte(cfg.Secret)
		a.accepted = append(a.accepted, jwt.SigningMethodHS256.Alg())
		if len(a.secret) < minSecretBytes {
			a.log.Warn("jwt secret is short; use at least 32 random bytes outside development",
				"bytes", len(a.secret))
		}
	}

	if cfg.JWKSURL != "" {
		a.accepted = append(a.accepted, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
		a.jwks = newJWKSCache(cfg)
		if err := a.jwks.fetch(ctx); err != nil {
			a.log.Warn("jwks fetch at start failed; will retry on demand",
				"url", cfg.JWKSURL, "error", err)
		}
		go a.jwks.refreshLoop(ctx)
	}

	if a.mode == ModeBuiltin {
		if err := checkBuiltinConfig(cfg); err != nil {
			return nil, err
		}
		key, err := loadOrCreateKey(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		a.builtin = key
		a.issuer = BuiltinIssuer
		a.accepted = []string{jwt.SigningMethodES256.Alg()}
	}

	a.parser = jwt.NewParser(
		jwt.WithValidMethods(a.accepted),
		// Claims are checked by verifyClaims, in an order that lets a
		// foreign token fail as UNAUTHORIZED even when it has also expired.
		jwt.WithoutClaimsValidation(),
	)
	a.validator = jwt.NewValidator(
		jwt.WithTimeFunc(cfg.Clock.Now),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	)
	return a, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.ProcessorRoleClaim == "" {
		cfg.ProcessorRoleClaim = defaultRoleClaim
	}
	switch cfg.ProcessorRoleClaim {
	case "sub", "iss", "aud", "exp", "nbf", "iat", "jti", "client_id":
		// Minting would overwrite the registered claim with the role.
		return cfg, fmt.Errorf("auth: processor role claim %q is a registered claim", cfg.ProcessorRoleClaim)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"refetch floor", &cfg.RefetchFloor, defaultRefetchFloor},
		{"leeway", &cfg.Leeway, defaultLeeway},
		{"jwks refresh interval", &cfg.RefreshInterval, defaultRefreshInterval},
	} {
		if *d.v < 0 {
			return cfg, fmt.Errorf("auth: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return cfg, errors.New("auth: jwks url must be an absolute http(s) URL")
		}
	}
	return cfg, nil
}

// Mode is "jwks", "secret", "jwks+secret" or "builtin".
func (a *Authenticator) Mode() string { return a.mode }

// Ready reports whether a token could be verified right now. Only the JWKS
// can be missing: a secret or the built-in key is always at hand, so a
// jwks+secret server counts as ready even while the IdP is unreachable.
func (a *Authenticator) Ready() bool {
	if a.secret != nil || a.builtin != nil {
		return true
	}
	return a.jwks.hasKeys()
}

// Verify checks token and returns whom it speaks for. Every error is a
// *pentecost.Error: TOKEN_EXPIRED for an expired but otherwise valid token,
// UNAUTHORIZED for anything else.
func (a *Authenticator) Verify(ctx context.Context, token string) (Identity, error) {
	id, perr := a.verify(ctx, token)
	if perr != nil {
		// Only the failed check: the token and its claims never reach a log.
		a.log.LogAttrs(ctx, slog.LevelDebug, "token rejected", slog.String("check", perr.Message))
		return Identity{}, perr
	}
	return id, nil
}

func (a *Authenticator) verify(ctx context.Context, token string) (Identity, *pentecost.Error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Identity{}, unauthorized(msgMissing)
	}
	if len(token) > maxTokenBytes {
		return Identity{}, unauthorized(msgTooLarge)
	}
	claims := jwt.MapClaims{}
	tok, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		key, perr := a.keyFor(ctx, t)
		if perr != nil {
			return nil, perr // not a typed nil: perr is non-nil here
		}
		return key, nil
	})
	if err != nil {
		return Identity{}, parseError(err, tok, a.accepted)
	}
	return a.verifyClaims(claims)
}

// keyFor binds each algorithm to its one source of keys. The parser already
// rejects algorithms outside a.accepted; the switch keeps the binding explicit
// so that no future change to accepted can let HS256 reach a public key.
func (a *Authenticator) keyFor(ctx context.Context, t *jwt.Token) (any, *pentecost.Error) {
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, unauthorized(msgMalformed)
	}
	switch alg := t.Method.Alg(); alg {
	case jwt.SigningMethodHS256.Alg():
		if a.secret == nil {
			return nil, unauthorized(msgAlgorithm)
		}
		return a.secret, nil
	case jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg():
		switch {
		case a.builtin != nil:
			return a.builtin.verificationKey(alg, kid)
		case a.jwks != nil:
			return a.jwks.key(ctx, alg, kid)
		}
	}
	return nil, unauthorized(msgAlgorithm)
}
