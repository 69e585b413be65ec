package clustertest

import (
	"net/url"
	"testing"
	"time"
)

// While Redis is unreachable a node keeps serving the audio of a session
// whose speaker and listeners are on it, refuses new sessions and joins with
// SERVICE_UNAVAILABLE and a retry hint, reports not ready, and recovers by
// itself when Redis returns.
func TestRedisLoss(t *testing.T) {
	c := newCluster(t, nil)
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, u.Host)
	u.Host = proxy.addr()
	c.url = u.String()
	a := c.node()
	sp, id := speaker(t, a, "alice")
	li, _ := listener(t, a, id, "es")
	_ = sp.SendBinary(ctx(t), []byte{0})
	nextAudio(t, li)

	proxy.cut()
	for i := 1; i <= 5; i++ {
		if err := sp.SendBinary(ctx(t), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if f := nextAudio(t, li); f.Header.Sequence != uint32(i) || f.Chunk[0] != byte(i) {
			t.Fatalf("during the outage: seq %d chunk %d, want %d", f.Header.Sequence, f.Chunk[0], i)
		}
	}
	ev := refused(t, dial(t, a, q("sessionId", id, "targetLanguage", "fr")), "SERVICE_UNAVAILABLE")
	if ev.Map("details")["retryAfter"] == nil {
		t.Fatalf("no retryAfter: %v", ev.JSON)
	}
	refused(t, dial(t, a, q("action", "createSession", "sourceLanguage", "en", "token", a.Token("bob"))), "SERVICE_UNAVAILABLE")
	if code := httpDo(t, "GET", a.URL+"/readyz", "", ""); code != 503 {
		t.Fatalf("/readyz during the outage: %d", code)
	}

	proxy.restore()
	eventually(t, 10*time.Second, "ready again after Redis returned", func() bool {
		return httpDo(t, "GET", a.URL+"/readyz", "", "") == 200
	})
	listener(t, a, id, "fr")
	// The shared counter resumes above what the node numbered alone.
	_ = sp.SendBinary(ctx(t), []byte{6})
	if f := nextAudio(t, li); f.Header.Sequence != 6 {
		t.Fatalf("after recovery: seq %d, want 6", f.Header.Sequence)
	}
}
