package autotls

import (
	"testing"

	"golang.org/x/crypto/acme/autocert"

	"github.com/pentecost/pentecost/internal/autotls/cachetest"
)

// The single node's cache, autocert's DirCache, passes the same suite as the
// cluster's Redis cache (internal/redis).
func TestDirCacheConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) autocert.Cache { return autocert.DirCache(t.TempDir()) })
}

func TestLocalLockConformance(t *testing.T) {
	cachetest.RunLock(t, func(t *testing.T) (cachetest.Locker, cachetest.Locker) {
		l := NewLocalLock()
		return l, l
	})
}
