package opstest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// A full scenario (create, join, audio, errors, bad tokens, end) at debug
// level leaves no token, full client IP or email in the logs.
func TestLogsNeverLeakSecrets(t *testing.T) {
	const email = "pastor.john@example.org"
	const clientIP = "203.0.113.77"
	n := testserver.Start(t, func(c *server.Config) { c.TrustedProxies = "127.0.0.1/32" })
	token := n.Token(email)
	hdr := http.Header{"X-Forwarded-For": {clientIP}}
	dialXFF := func(query string) *client.Conn {
		c, err := client.Dial(ctx(t), n.WS(query), client.DialOptions{Header: hdr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	sp := dialXFF(q("action", "createSession", "sourceLanguage", "en", "token", token))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	li := dialXFF(q("sessionId", id, "targetLanguage", "es"))
	expect(t, li, "sessionJoined")
	_ = sp.SendBinary(ctx(t), []byte("audio"))
	nextAudio(t, li)
	// Errors of every kind, with the token in play.
	refused(t, dialXFF(q("action", "createSession", "sourceLanguage", "en", "token", token+"x")), "UNAUTHORIZED", 4401)
	refused(t, dialXFF(q("sessionId", id, "token", n.Token("intruder@example.org"))), "FORBIDDEN", 4403)
	_ = sp.SendText(ctx(t), []byte("{not json"))
	expect(t, sp, "error")
	httpDo(t, "POST", n.URL+"/sessions", token+"garbage", `{"sourceLanguage":"en"}`)
	httpDo(t, "PATCH", n.URL+"/sessions/"+id, token, `{"status":"paused"}`)
	_ = sp.Send(ctx(t), map[string]any{"action": "endSession", "reason": "amen"})
	expect(t, li, "sessionEnded")

	logs := n.Logs.String()
	if !strings.Contains(logs, id) {
		t.Fatalf("the logs should carry the session ID as correlation id; got:\n%s", logs)
	}
	for _, secret := range []string{token, token[len(token)-20:], email, "intruder@example.org", clientIP} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestMetrics(t *testing.T) {
	n := testserver.Start(t, nil)
	sp, id := speaker(t, n, "alice")
	li := listener(t, n, id, "es")
	listener(t, n, id, "es")
	listener(t, n, id, "fr")
	_ = sp.SendBinary(ctx(t), []byte("x"))
	nextAudio(t, li)
	refused(t, dial(t, n, q("sessionId", "no-such-123", "targetLanguage", "es")), "SESSION_NOT_FOUND", 4404)

	wants := []string{
		`pentecost_session_create_duration_seconds_count 1`,
		`pentecost_listener_join_duration_seconds_count 3`,
		`pentecost_sessions_active 1`,
		`pentecost_speaker_connections 1`,
		`pentecost_listeners{language="es"} 2`,
		`pentecost_listeners{language="fr"} 1`,
		`pentecost_audio_chunks_received_total 1`,
		`pentecost_errors_sent_total{code="SESSION_NOT_FOUND"} 1`,
		`pentecost_audio_frames_dropped_total 0`,
		`pentecost_queued_messages`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	}
	// Some counters move after the client has seen what they count (the
	// chunk is counted once it is fanned out): poll until they all agree.
	var body string
	var missing []string
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		body, missing = scrape(t, n), nil
		for _, want := range wants {
			if !strings.Contains(body, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("metrics lack %q:\n%s", missing, body)
}

func scrape(t *testing.T, n *testserver.Node) string {
	t.Helper()
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}
