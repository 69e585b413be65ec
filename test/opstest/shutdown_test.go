package opstest

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// A node told to stop asks every client to move, closes them with 1012 after
// the drain, and a new node on the same data dir resumes the session: the
// speaker re-attaches to the same ID and listeners re-join.
func TestShutdownDrainsAndRestartResumes(t *testing.T) {
	cfg := server.Defaults()
	cfg.JWTSecret = testserver.Secret
	cfg.DataDir = t.TempDir()
	cfg.ShutdownGrace = 300 * time.Millisecond
	cfg.SweepInterval = 0
	cfg.AudioMaxChunksPerSec = 0
	cfg.HeartbeatTimeout = 0
	cfg.PingInterval = 0
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	a := testserver.StartConfig(t, cfg, clock)
	sp, id := speaker(t, a, "alice")
	li := listener(t, a, id, "es")
	for i := 0; i < 3; i++ {
		_ = sp.SendBinary(ctx(t), []byte{byte(i)})
		nextAudio(t, li)
	}

	done := make(chan struct{})
	go func() { a.Stop(); close(done) }()
	ev := expect(t, sp, "connectionRefreshRequired")
	if ev.String("reason") != "serverShutdown" || ev.String("sessionId") != id || ev.String("role") != "speaker" {
		t.Fatalf("speaker notice: %v", ev.JSON)
	}
	lev := expect(t, li, "connectionRefreshRequired")
	if lev.String("reason") != "serverShutdown" || lev.String("targetLanguage") != "es" {
		t.Fatalf("listener notice: %v", lev.JSON)
	}
	expectClose(t, sp, 1012)
	expectClose(t, li, 1012)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("shutdown did not finish")
	}

	// The node stays down for 50 s: the speaker's grace (60 s) counts from
	// the restart, not from the shutdown, which was no fault of the speaker.
	clock.Advance(50 * time.Second)
	b := testserver.StartConfig(t, cfg, clock)
	clock.Advance(15 * time.Second)
	li2 := dial(t, b, q("sessionId", id, "targetLanguage", "es"))
	joined := expect(t, li2, "sessionJoined")
	if joined.Bool("speakerConnected") {
		t.Fatal("no speaker has re-attached yet")
	}
	sp2 := dial(t, b, q("sessionId", id, "token", b.Token("alice")))
	if ev := expect(t, sp2, "sessionJoined"); ev.String("role") != "speaker" || ev.String("sessionId") != id {
		t.Fatalf("re-attach: %v", ev.JSON)
	}
	expect(t, li2, "speakerReconnected")
	if err := sp2.SendBinary(ctx(t), []byte("after restart")); err != nil {
		t.Fatal(err)
	}
	f := nextAudio(t, li2)
	if string(f.Chunk) != "after restart" || f.Header.Sequence != 3 {
		t.Fatalf("audio after restart: %q seq %d, want the sequence to continue at 3", f.Chunk, f.Header.Sequence)
	}
}

// During the drain the node still accepts connections and answers a new
// WebSocket with the documented 503 and Retry-After, which a client can act
// on, rather than refusing the TCP connection.
func TestDrainAnswers503(t *testing.T) {
	n := testserver.Start(t, func(c *server.Config) {
		c.ShutdownGrace = 3 * time.Second
		c.HeartbeatTimeout = 0
		c.PingInterval = 0
	})
	_, id := speaker(t, n, "alice")
	li := listener(t, n, id, "es") // stays, so the drain lasts its grace
	done := make(chan struct{})
	go func() { n.Stop(); close(done) }()
	expect(t, li, "connectionRefreshRequired")

	_, err := client.Dial(ctx(t), n.WS(q("sessionId", id, "targetLanguage", "es")), client.DialOptions{})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Details["retryAfter"] != float64(5) {
		t.Fatalf("a connection during the drain got %v, want HTTP 503 with Retry-After: 5", err)
	}
	// And the health check a load balancer reads says so.
	if status, _, body := httpDo(t, "GET", n.URL+"/readyz", "", ""); status != http.StatusServiceUnavailable || body["message"] != "shutting down" {
		t.Fatalf("GET /readyz during the drain: %d %v", status, body)
	}
	select {
	case <-done:
	case <-time.After(wait + 3*time.Second):
		t.Fatal("shutdown did not finish")
	}
}
