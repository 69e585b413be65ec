package opstest

import (
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// With the default limits, a congregation of 500 phones behind one church
// Wi-Fi (one public IP) all get in within two minutes.
func TestFiveHundredListenersBehindOneNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 connections")
	}
	n := testserver.Start(t, func(c *server.Config) { c.HeartbeatTimeout = 0; c.PingInterval = 0; c.StatusInterval = 0 })
	_, id := speaker(t, n, "alice")
	start := n.Clock.Now()
	joined, refusals := 0, 0
	for joined < 500 {
		c, err := client.Dial(ctx(t), n.WS(q("sessionId", id, "targetLanguage", "es")), client.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		switch ev.String("type") {
		case "sessionJoined":
			joined++
		case "error":
			if ev.String("code") != "RATE_LIMIT_EXCEEDED" {
				t.Fatalf("join %d: %v", joined, ev.JSON)
			}
			refusals++
			// A client waits what it is told to, then tries again.
			retry := ev.Map("details")["retryAfter"].(float64)
			n.Clock.Advance(time.Duration(retry) * time.Second)
		default:
			t.Fatalf("join %d: %v", joined, ev.JSON)
		}
	}
	took := n.Clock.Since(start)
	if took > 2*time.Minute {
		t.Fatalf("500 joins took %v of (simulated) time, want at most 2m", took)
	}
	t.Logf("500 listeners joined in %v simulated time with %d refusals", took, refusals)
}

func TestConnectionsPerIPAreBounded(t *testing.T) {
	n := testserver.Start(t, func(c *server.Config) { c.MaxConnectionsPerIP = 5 })
	_, id := speaker(t, n, "alice") // the speaker's connection is one of the five
	for i := 0; i < 4; i++ {
		listener(t, n, id, "es")
	}
	ev := refused(t, dial(t, n, q("sessionId", id, "targetLanguage", "es")), "RATE_LIMIT_EXCEEDED", 4429)
	if ev.Map("details")["retryAfter"] == nil {
		t.Fatalf("no retryAfter: %v", ev.JSON)
	}
}

func TestConnectAttemptsPerIPAreLimited(t *testing.T) {
	n := testserver.Start(t, func(c *server.Config) { c.RateConnectsBurst = 3; c.RateConnectsPerMinute = 60 })
	_, id := speaker(t, n, "alice")
	listener(t, n, id, "es")
	listener(t, n, id, "es")
	c := dial(t, n, q("sessionId", id, "targetLanguage", "es"))
	ev := refused(t, c, "RATE_LIMIT_EXCEEDED", 4429)
	if got := ev.Map("details")["retryAfter"].(float64); got != 1 {
		t.Fatalf("retryAfter = %v, want 1 s at 60/min", got)
	}
	n.Clock.Advance(time.Second)
	listener(t, n, id, "es")
}
