package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

// CertCache keeps the ACME account key and certificates (and the pending
// challenge answers) in Redis, so the nodes of a cluster share one account
// and one certificate per domain, and any node can answer the CA's HTTP-01
// and TLS-ALPN-01 probes for an order another node placed. It implements
// autocert.Cache. The values include private keys: whoever can read the
// Redis can impersonate the site.
type CertCache struct {
	c *Client
}

// challengeTTL bounds how long a challenge answer outlives a node that
// crashed before deleting it.
const challengeTTL = time.Hour

// NewCertCache returns the certificate cache on c.
func NewCertCache(c *Client) *CertCache { return &CertCache{c: c} }

var _ autocert.Cache = (*CertCache)(nil)

// Get returns the value of name, or autocert.ErrCacheMiss.
func (cc *CertCache) Get(ctx context.Context, name string) ([]byte, error) {
	b, err := cc.c.rdb.Get(ctx, cc.c.key("acme", name)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, autocert.ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("redis: acme cache get: %w", err)
	}
	return b, nil
}

// Put stores data under name; challenge answers expire after an hour.
func (cc *CertCache) Put(ctx context.Context, name string, data []byte) error {
	var ttl time.Duration
	if strings.HasSuffix(name, "+http-01") || strings.HasSuffix(name, "+token") {
		ttl = challengeTTL
	}
	if err := cc.c.rdb.Set(ctx, cc.c.key("acme", name), data, ttl).Err(); err != nil {
		return fmt.Errorf("redis: acme cache put: %w", err)
	}
	return nil
}

// Delete removes name; a missing name is not an error.
func (cc *CertCache) Delete(ctx context.Context, name string) error {
	if err := cc.c.rdb.Del(ctx, cc.c.key("acme", name)).Err(); err != nil {
		return fmt.Errorf("redis: acme cache delete: %w", err)
	}
	return nil
}
