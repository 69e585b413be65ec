package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
)

const (
	// Real key sets are a few KiB; the cap bounds what a misbehaving IdP or
	// a wrong URL can make us buffer.
	maxJWKSBytes = 1 << 20

	// After a failed background fetch, try again sooner than the full
	// refresh interval so that Ready recovers without waiting an hour.
	jwksRetryDelay = time.Minute

	// Keys below 2048 bits are not considered safe for RS256.
	minRSABits = 2048
)

type jwksKey struct {
	kid string
	alg string // the JWK's declared alg; empty means any alg fitting the key type
	key any    // *rsa.PublicKey or *ecdsa.PublicKey (P-256)
}

// jwksCache holds the IdP's verification keys. Fetches are serialized by a
// one-slot semaphore (a channel, so that waiters can give up with their
// context), and on-demand fetches are limited to one per floor.
type jwksCache struct {
	url     string
	client  *http.Client
	clock   clockwork.Clock
	floor   time.Duration
	refresh time.Duration
	log     *slog.Logger

	fetching chan struct{}

	mu        sync.RWMutex
	keys      []jwksKey
	lastFetch time.Time // start of the last attempt, successful or not
	lastErr   error     // outcome of the last attempt
}

func newJWKSCache(cfg Config) *jwksCache {
	return &jwksCache{
		url:      cfg.JWKSURL,
		client:   cfg.HTTPClient,
		clock:    cfg.Clock,
		floor:    cfg.RefetchFloor,
		refresh:  cfg.RefreshInterval,
		log:      cfg.Logger,
		fetching: make(chan struct{}, 1),
	}
}

func (c *jwksCache) hasKeys() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys) > 0
}

// key finds the verification key(s) for a token. An unknown kid costs one
// synchronous refetch, unless one happened within the floor: a stream of
// tokens with made-up kids must not turn into a stream of requests to the IdP.
func (c *jwksCache) key(ctx context.Context, alg, kid string) (any, *pentecost.Error) {
	keys, kidKnown := c.lookup(alg, kid)
	if len(keys) == 0 && !kidKnown {
		c.refetch(ctx)
		keys, kidKnown = c.lookup(alg, kid)
	}
	switch {
	case len(keys) == 1:
		return keys[0], nil
	case len(keys) > 1:
		// Only without a kid: let jwt try each key of the right type.
		return jwt.VerificationKeySet{Keys: append([]jwt.VerificationKey(nil), keys...)}, nil
	case kidKnown:
		return nil, unauthorized(msgKeyMismatch)
	}
	c.mu.RLock()
	lastErr := c.lastErr
	c.mu.RUnlock()
	if lastErr != nil {
		// We cannot tell a rotated key from a forged kid while the IdP is
		// unreachable; say so rather than blame the token.
		return nil, unauthorized(msgKeysUnavailable).Wrap(lastErr)
	}
	return nil, unauthorized(msgUnknownKey)
}

// lookup returns the keys usable for alg and kid (all keys fitting alg when
// the token names no kid), and whether a key with that kid exists at all.
func (c *jwksCache) lookup(alg, kid string) (keys []jwt.VerificationKey, kidKnown bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, k := range c.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		kidKnown = kid != ""
		if keyFits(k, alg) {
			keys = append(keys, k.key)
		}
	}
	return keys, kidKnown
}

func keyFits(k jwksKey, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch k.key.(type) {
	case *rsa.PublicKey:
		return alg == jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		return alg == jwt.SigningMethodES256.Alg()
	}
	return false
}

// refetch fetches unless a fetch started within the floor. Callers that
// queue behind a running fetch see its start time and so do not fetch again.
func (c *jwksCache) refetch(ctx context.Context) {
	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-c.fetching }()

	c.mu.RLock()
	last := c.lastFetch
	c.mu.RUnlock()
	if !last.IsZero() && c.clock.Since(last) < c.floor {
		return
	}
	// The fetch is shared with every token waiting on it, so one client
	// hanging up must not abort it; the HTTP client's timeout bounds it.
	_ = c.fetchLocked(context.WithoutCancel(ctx))
}

// fetch downloads the key set now, whatever the floor says.
func (c *jwksCache) fetch(ctx context.Context) error {
	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.fetching }()
	return c.fetchLocked(ctx)
}

// fetchLocked runs with the semaphore held. A failed fetch keeps the old
// keys: an IdP outage should not lock out speakers whose keys we know.
func (c *jwksCache) fetchLocked(ctx context.Context) error {
	start := c.clock.Now()
	keys, err := c.download(ctx)
	c.mu.Lock()
	c.lastFetch = start
	c.lastErr = err
	if err == nil {
		c.keys = keys
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("jwks fetch failed", "url", c.url, "error", err)
		return err
	}
	c.log.Debug("jwks fetched", "url", c.url, "keys", len(keys))
	return nil
}

// refreshLoop refreshes the keys so that keys the IdP has withdrawn stop
// verifying even if no unknown kid ever triggers a refetch.
func (c *jwksCache) refreshLoop(ctx context.Context) {
	delay := c.nextDelay()
	for {
		t := c.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.Chan():
		}
		_ = c.fetch(ctx)
		delay = c.nextDelay()
	}
}

func (c *jwksCache) nextDelay() time.Duration {
	c.mu.RLock()
	failed := c.lastErr != nil
	c.mu.RUnlock()
	if failed {
		return min(jwksRetryDelay, c.refresh)
	}
	return c.refresh
}

func (c *jwksCache) download(ctx context.Context) ([]jwksKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks fetch: unexpected status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks read: larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body, c.log)
}

// parseJWKS keeps the RS256/ES256 signing keys and skips the rest. Skipping
// rather than failing matters: IdPs publish encryption keys and algorithms
// we do not use next to the signing keys. Symmetric ("oct") keys are never
// taken from a JWKS, so HS256 can only ever meet the configured secret.
func parseJWKS(body []byte, log *slog.Logger) ([]jwksKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks parse: %w", err)
	}
	var keys []jwksKey
	for _, m := range set.Keys {
		k, err := usableKey(m)
		if err != nil {
			log.Debug("jwks key skipped", "kid", m.KID, "reason", err)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks parse: no usable RS256 or ES256 signing key")
	}
	return keys, nil
}

func usableKey(m jwkset.JWKMarshal) (jwksKey, error) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return jwksKey{}, fmt.Errorf("use is %q", m.USE)
	}
	alg := string(m.ALG)
	if alg != "" && alg != jwt.SigningMethodRS256.Alg() && alg != jwt.SigningMethodES256.Alg() {
		return jwksKey{}, fmt.Errorf("alg %q not accepted", alg)
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return jwksKey{}, err
	}
	switch pub := jwk.Key().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return jwksKey{}, fmt.Errorf("rsa key of %d bits", pub.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return jwksKey{}, errors.New("ecdsa key not on P-256")
		}
	default:
		return jwksKey{}, fmt.Errorf("key type %T", pub)
	}
	return jwksKey{kid: m.KID, alg: alg, key: jwk.Key()}, nil
}
