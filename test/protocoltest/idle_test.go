package protocoltest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/server"
)

// Idle connections (sections 8 and 11) and the listener cap.

// noPings keeps the server's pings (and the client's automatic pongs) out of
// idle tests: a pong is inbound activity that would race with the check.
func noPings(c *server.Config) { c.PingInterval = 0 }

func TestIdleConnectionTimesOut(t *testing.T) {
	t.Parallel()
	n := start(t, noPings)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	bare := dial(t, n, "")
	alive(t, bare) // connected: its timers run
	n.Clock.Advance(89 * time.Second)
	alive(t, bare) // activity 1 s before the timeout moves it
	n.Clock.Advance(2 * time.Second)
	for _, c := range []*client.Conn{sp, li} {
		ev := expect(t, c, "connectionTimeout")
		if s := ev.Int("idleSeconds"); s < 90 || s > 91 {
			t.Fatalf("idleSeconds %d, want 90-91", s)
		}
		checkMillis(t, ev, "timestamp")
		if ce := expectClose(t, c, 4408); ce.Reason == "" {
			t.Log("note: idle close without a reason")
		}
	}
	// The speaker's drop started the grace: the session lives on.
	alive(t, bare)
	if g := getSession(t, n, id); g.ev().String("status") != "active" {
		t.Fatalf("GET after idle closes: %s", g.Raw)
	}
	n.Clock.Advance(90 * time.Second)
	ev := expect(t, bare, "connectionTimeout")
	if ev.Int("idleSeconds") < 90 {
		t.Fatalf("connectionTimeout = %s", ev.Raw)
	}
	expectClose(t, bare, 4408)
}

func TestHeartbeatsKeepAConnectionOpen(t *testing.T) {
	t.Parallel()
	n := start(t, noPings)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	// 10 minutes of 60-second heartbeats (within the 2-per-minute limit).
	for i := 0; i < 10; i++ {
		n.Clock.Advance(60 * time.Second)
		for _, c := range []*client.Conn{sp, li} {
			act(t, c, "heartbeat")
			expect(t, c, "heartbeatAck")
		}
	}
	// Still open, still serving, never told about a timeout.
	sendBin(t, sp, chunk(1, 10))
	for {
		ev, err := li.Next(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "connectionTimeout" {
			t.Fatal("a heartbeating listener got connectionTimeout")
		}
		if ev.Audio != nil {
			break
		}
	}
	// Audio counts as activity too: a speaker that only streams stays.
	for i := 0; i < 5; i++ {
		n.Clock.Advance(60 * time.Second)
		sendBin(t, sp, chunk(2, 10))
		nextAudio(t, li) // the server has read the chunk
		act(t, li, "heartbeat")
		expect(t, li, "heartbeatAck")
	}
	act(t, sp, "getSessionStatus")
	for _, ev := range collectUntil(t, sp, "sessionStatus") {
		if ev.Type == "connectionTimeout" {
			t.Fatal("a streaming speaker got connectionTimeout")
		}
	}
}

func TestListenerCapIsAtomic(t *testing.T) {
	t.Parallel()
	const capacity = 8
	n := start(t, cfgs(loose, func(c *server.Config) { c.MaxListenersPerSession = capacity }))
	sp, id := speaker(t, n, "alice")
	type result struct {
		c   *client.Conn
		ev  client.Event
		err error
	}
	results := make([]result, capacity+5)
	var wg sync.WaitGroup
	langs := []string{"es", "fr", "de"}
	cx := ctx(t)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(cx, n.WS(q("sessionId", id, "targetLanguage", langs[i%3])), client.DialOptions{})
			if err != nil {
				results[i].err = err
				return
			}
			results[i].c = c
			for {
				ev, err := c.Next(cx)
				if err != nil {
					results[i].err = err
					return
				}
				if ev.Type == "sessionJoined" || ev.Type == "error" {
					results[i].ev = ev
					return
				}
			}
		}()
	}
	wg.Wait()
	joined, full := 0, 0
	for _, r := range results {
		if r.c != nil {
			t.Cleanup(r.c.CloseNow)
		}
		if r.err != nil {
			t.Fatalf("listener: %v", r.err)
		}
		switch r.ev.Type {
		case "sessionJoined":
			joined++
			if c := r.ev.Int("listenerCount"); c < 1 || c > capacity {
				t.Fatalf("listenerCount %d", c)
			}
		case "error":
			checkErr(t, r.ev, "SESSION_FULL", 503, map[string]any{"maxListeners": capacity})
			if ce := expectClose(t, r.c, 4503); ce.Reason != "SESSION_FULL" {
				t.Fatalf("close reason %q", ce.Reason)
			}
			full++
		}
	}
	if joined != capacity || full != 5 {
		t.Fatalf("%d joined and %d refused, want %d and 5", joined, full, capacity)
	}
	g := getSession(t, n, id)
	if g.ev().Int("listenerCount") != capacity {
		t.Fatalf("GET listenerCount %d, want %d", g.ev().Int("listenerCount"), capacity)
	}
	total := 0
	for _, v := range g.ev().Map("languageDistribution") {
		total += int(v.(float64))
	}
	if total != capacity {
		t.Fatalf("languageDistribution sums to %d: %s", total, g.Raw)
	}
	// Every listener that got in hears the speaker.
	sendBin(t, sp, chunk(1, 10))
	for _, r := range results {
		if r.ev.Type == "sessionJoined" {
			wantAudio(t, r.c, 0, chunk(1, 10))
		}
	}
	// A place freed by a leaving listener can be taken again. The leave is
	// handled after the close handshake, so ask for the status until it
	// shows (each answer is a round trip; there is no sleeping).
	for _, r := range results {
		if r.ev.Type == "sessionJoined" {
			r.c.Close()
			break
		}
	}
	for {
		act(t, sp, "getSessionStatus")
		if expectStatus(t, sp, "requested").Int("listenerCount") == capacity-1 {
			break
		}
	}
	listener(t, n, id, "it")
	refusedWith(t, n, q("sessionId", id, "targetLanguage", "it"), "SESSION_FULL", 4503)
}

// With the default limits, 500 listeners behind one NAT (one client IP)
// all join within 2 minutes, even when they all try at once: a refused one
// waits the retryAfter it was given and tries again.
func TestNATJoinBudget(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) {
		c.HeartbeatTimeout = 0
		c.PingInterval = 0
		c.StatusInterval = 0
	})
	_, id := speaker(t, n, "alice")
	begin := n.Clock.Now()
	joined, refusals := 0, 0
	for joined < 500 {
		c, err := client.Dial(ctx(t), n.WS(q("sessionId", id, "targetLanguage", "es")), client.DialOptions{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(c.CloseNow)
		ev, err := c.Expect(ctx(t), "sessionJoined")
		if err == nil {
			joined++
			continue
		}
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code != "RATE_LIMIT_EXCEEDED" || se.Close == nil || se.Close.Code != 4429 {
			t.Fatalf("join %d: %v %s", joined, err, ev.Raw)
		}
		ra, _ := se.Details["retryAfter"].(float64)
		if ra < 1 {
			t.Fatalf("retryAfter %v", se.Details["retryAfter"])
		}
		refusals++
		n.Clock.Advance(time.Duration(ra) * time.Second)
	}
	if took := n.Clock.Since(begin); took > 2*time.Minute {
		t.Fatalf("500 joins took %v of retries (%d refusals), want at most 2 minutes", took, refusals)
	}
	if g := getSession(t, n, id); g.ev().Int("listenerCount") != 500 {
		t.Fatalf("listenerCount %d", g.ev().Int("listenerCount"))
	}
}

func TestShutdownDrain(t *testing.T) {
	t.Parallel()
	n := start(t, nil) // drain grace 200 ms
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	txt, _ := listener(t, n, id, "fr", "audioEncoding", "base64")
	now := n.Clock.Now()
	n.Stop()
	for _, c := range []struct {
		c          *client.Conn
		role, lang string
	}{{sp, "speaker", ""}, {li, "listener", "es"}, {txt, "listener", "fr"}} {
		ev := expect(t, c.c, "connectionRefreshRequired")
		if ev.String("sessionId") != id || ev.String("role") != c.role || ev.String("targetLanguage") != c.lang ||
			ev.String("reason") != "serverShutdown" {
			t.Fatalf("connectionRefreshRequired = %s", ev.Raw)
		}
		if got, want := checkMillis(t, ev, "refreshBy"), now.Add(200*time.Millisecond).UnixMilli(); got != want {
			t.Fatalf("refreshBy %d, want the end of the drain %d", got, want)
		}
		expectClose(t, c.c, 1012)
	}
}
