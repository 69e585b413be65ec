// Package cachetest is the conformance suite of the certificate cache
// (autocert.Cache) and of the order lock (autotls.OrderLock): the single
// node's (a directory, a keyed mutex) and the cluster's (Redis) must behave
// the same for autocert.
package cachetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// Run checks the cache that newCache returns (a fresh, empty one per call).
func Run(t *testing.T, newCache func(t *testing.T) autocert.Cache) {
	ctx := context.Background()
	t.Run("MissIsErrCacheMiss", func(t *testing.T) {
		c := newCache(t)
		if _, err := c.Get(ctx, "nothing.example"); !errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("Get of a missing name: %v, want autocert.ErrCacheMiss", err)
		}
	})
	t.Run("PutGetOverwriteDelete", func(t *testing.T) {
		c := newCache(t)
		// The names autocert uses: account key, ECDSA and RSA
		// certificates, challenge answers.
		for _, name := range []string{"acme_account+key", "live.example.org", "live.example.org+rsa", "live.example.org+token", "abcDEF_123-x+http-01"} {
			v1 := append([]byte("-----BEGIN X-----\n\x00\xff binary "), name...)
			if err := c.Put(ctx, name, v1); err != nil {
				t.Fatalf("Put %s: %v", name, err)
			}
			got, err := c.Get(ctx, name)
			if err != nil || !bytes.Equal(got, v1) {
				t.Fatalf("Get %s = %q, %v; want %q", name, got, err, v1)
			}
			v2 := []byte("second")
			if err := c.Put(ctx, name, v2); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Get(ctx, name); !bytes.Equal(got, v2) {
				t.Fatalf("after overwrite Get %s = %q", name, got)
			}
			if err := c.Delete(ctx, name); err != nil {
				t.Fatalf("Delete %s: %v", name, err)
			}
			if _, err := c.Get(ctx, name); !errors.Is(err, autocert.ErrCacheMiss) {
				t.Fatalf("Get after Delete %s: %v", name, err)
			}
		}
	})
	t.Run("DeleteMissingIsNoError", func(t *testing.T) {
		if err := newCache(t).Delete(ctx, "never.example"); err != nil {
			t.Fatalf("Delete of a missing name: %v", err)
		}
	})
	t.Run("NamesAreSeparate", func(t *testing.T) {
		c := newCache(t)
		_ = c.Put(ctx, "a.example", []byte("a"))
		_ = c.Put(ctx, "a.example+rsa", []byte("b"))
		if got, _ := c.Get(ctx, "a.example"); string(got) != "a" {
			t.Fatalf("a.example = %q", got)
		}
	})
}

// Locker is what RunLock checks (autotls.OrderLock, declared here again so
// the suite does not import the package it tests).
type Locker interface {
	Lock(ctx context.Context, key string) (release func(), err error)
}

// RunLock checks an order lock: newLocks returns two handles on one fresh
// lock space (two nodes sharing a Redis, or one process twice).
func RunLock(t *testing.T, newLocks func(t *testing.T) (Locker, Locker)) {
	t.Run("ExcludesAndHandsOver", func(t *testing.T) {
		a, b := newLocks(t)
		ctx := context.Background()
		release, err := a.Lock(ctx, "live.example.org")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := b.Lock(short, "live.example.org"); err == nil {
			t.Fatal("the lock was taken twice")
		}
		// Another key is independent.
		r2, err := b.Lock(ctx, "www.example.org")
		if err != nil {
			t.Fatal(err)
		}
		r2()
		got := make(chan error, 1)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			rb, err := b.Lock(wctx, "live.example.org")
			if err == nil {
				rb()
			}
			got <- err
		}()
		release()
		if err := <-got; err != nil {
			t.Fatalf("the waiter did not get the released lock: %v", err)
		}
		release() // a second release is harmless
		r3, err := a.Lock(ctx, "live.example.org")
		if err != nil {
			t.Fatal(err)
		}
		r3()
	})
}
