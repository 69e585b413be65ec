package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/storetest"
)

// testClient connects to the Redis named by PENTECOST_TEST_REDIS_URL with a
// prefix of its own, so tests never see each other's keys, and removes its
// keys afterwards.
func testClient(t *testing.T) *Client {
	t.Helper()
	url := os.Getenv("PENTECOST_TEST_REDIS_URL")
	if url == "" {
		t.Skip("PENTECOST_TEST_REDIS_URL is not set: Redis-backed tests skipped (CI sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "pentecost-test-" + hex.EncodeToString(b[:]) + ":"
	c, err := Open(context.Background(), url, prefix)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.rdb.Del(ctx, keys...)
		}
		_ = c.Close()
	})
	return c
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pentecost.SessionStore {
		return NewStore(testClient(t))
	})
}
