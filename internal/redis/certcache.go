package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// OrderLock is the cluster's autotls.OrderLock: a Redis key set with NX,
// held at most lockTTL (longer than an order may take, so a crashed
// holder's lock lapses) and released only by its holder.
type OrderLock struct {
	c    *Client
	ttl  time.Duration
	poll time.Duration
}

const lockTTL = 6 * time.Minute

// NewOrderLock returns the order lock on c.
func NewOrderLock(c *Client) *OrderLock {
	return &OrderLock{c: c, ttl: lockTTL, poll: 250 * time.Millisecond}
}

var unlockScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// Lock implements autotls.OrderLock, polling while another node holds it.
func (l *OrderLock) Lock(ctx context.Context, name string) (func(), error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := l.c.key("acme-lock", name)
	for {
		ok, err := l.c.rdb.SetNX(ctx, key, token, l.ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: acme order lock: %w", err)
		}
		if ok {
			var once sync.Once
			return func() {
				once.Do(func() {
					rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					_ = unlockScript.Run(rctx, l.c.rdb, []string{key}, token).Err()
				})
			}, nil
		}
		t := time.NewTimer(l.poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}
