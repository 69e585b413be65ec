package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestBucketsBurstRefillAndRetry(t *testing.T) {
	clock := clockwork.NewFakeClock()
	b := NewBuckets(clock, 60, 3) // one a second, three at once
	for i := 0; i < 3; i++ {
		if ok, _ := b.Allow("203.0.113.1"); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, retry := b.Allow("203.0.113.1")
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("past the burst: ok %v retry %v, want refused with retry <= 1s", ok, retry)
	}
	if ok, _ := b.Allow("198.51.100.2"); !ok {
		t.Fatal("another key has its own bucket")
	}
	clock.Advance(retry)
	if ok, _ := b.Allow("203.0.113.1"); !ok {
		t.Fatal("a token is back after retryAfter")
	}
}

func TestBucketsForgetIdleKeys(t *testing.T) {
	clock := clockwork.NewFakeClock()
	b := NewBuckets(clock, 60, 10)
	for i := 0; i < 1000; i++ {
		b.Allow(fmt.Sprintf("10.0.%d.%d", i/250, i%250))
	}
	if b.Len() != 1000 {
		t.Fatalf("held %d keys", b.Len())
	}
	clock.Advance(11 * time.Second) // every bucket has refilled
	b.Allow("10.9.9.9")
	if b.Len() != 1 {
		t.Fatalf("after refilling, %d keys are still held; want only the new one", b.Len())
	}
}

func TestBucketsDisabled(t *testing.T) {
	b := NewBuckets(clockwork.NewFakeClock(), 0, 1)
	for i := 0; i < 100; i++ {
		if ok, _ := b.Allow("x"); !ok {
			t.Fatal("a rate of 0 disables the limit")
		}
	}
}

func TestHourly(t *testing.T) {
	clock := clockwork.NewFakeClock()
	h := NewHourly(clock)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if ok, _, _ := h.Allow(ctx, "sessions:alice", 50); !ok {
			t.Fatalf("creation %d refused", i)
		}
	}
	ok, retry, _ := h.Allow(ctx, "sessions:alice", 50)
	if ok || retry < 70*time.Second || retry > 73*time.Second {
		t.Fatalf("51st: ok %v retry %v, want about 72 s (an hour / 50)", ok, retry)
	}
	if ok, _, _ := h.Allow(ctx, "sessions:bob", 50); !ok {
		t.Fatal("users have their own limits")
	}
}
