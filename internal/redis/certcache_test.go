package redis

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/pentecost/pentecost/internal/autotls/cachetest"
)

func TestCertCacheConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) autocert.Cache { return NewCertCache(testClient(t)) })
}

// A challenge answer left by a node that crashed mid-order expires; the
// certificates and the account key do not.
func TestCertCacheChallengeAnswersExpire(t *testing.T) {
	c := testClient(t)
	cc := NewCertCache(c)
	ctx := context.Background()
	for name, want := range map[string]bool{"tok+http-01": true, "live.example.org+token": true, "live.example.org": false, "acme_account+key": false} {
		if err := cc.Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.rdb.TTL(ctx, c.key("acme", name)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := ttl > 0 && ttl <= time.Hour; got != want {
			t.Errorf("%s: TTL %v, want expiring=%v", name, ttl, want)
		}
	}
}

// Two nodes on one Redis: the order lock passes the same suite as a single
// node's.
func TestOrderLockConformance(t *testing.T) {
	cachetest.RunLock(t, func(t *testing.T) (cachetest.Locker, cachetest.Locker) {
		c := testClient(t)
		return NewOrderLock(c), NewOrderLock(c)
	})
}

// A node that crashed holding the lock does not block the others for
// longer than the lock's lifetime.
func TestOrderLockLapses(t *testing.T) {
	c := testClient(t)
	crashed := &OrderLock{c: c, ttl: 300 * time.Millisecond, poll: 20 * time.Millisecond}
	if _, err := crashed.Lock(context.Background(), "live.example.org"); err != nil {
		t.Fatal(err)
	}
	other := &OrderLock{c: c, ttl: lockTTL, poll: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release, err := other.Lock(ctx, "live.example.org")
	if err != nil {
		t.Fatalf("the lapsed lock was not handed over: %v", err)
	}
	release()
}
