package protocoltest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// The token in the first message (docs/protocol.md 4.3, auth=message): what
// the browser speaker app does, so that no token is ever in a URL.

// authenticate connects with auth=message and sends the token first.
func authenticate(t *testing.T, n *testserver.Node, query, token string) *client.Conn {
	t.Helper()
	c := dial(t, n, query+"&auth=message")
	sendJSON(t, c, map[string]any{"action": "authenticate", "token": token})
	return c
}

func TestAuthMessageCreatesAttachesAndRefreshes(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	tok := n.Token("alice")
	sp := authenticate(t, n, q("action", "createSession", "sourceLanguage", "en"), tok)
	id := expect(t, sp, "sessionCreated").String("sessionId")
	if id == "" {
		t.Fatal("sessionCreated without a sessionId")
	}
	// The session works as any other: a listener hears the speaker.
	li, _ := listener(t, n, id, "en")
	sendBin(t, sp, chunk(1, 320))
	wantAudio(t, li, 0, chunk(1, 320))

	// A refresh, and an attach after a drop, authenticate the same way.
	ref := authenticate(t, n, q("action", "refreshConnection", "role", "speaker", "sessionId", id), tok)
	if ev := expect(t, ref, "connectionRefreshComplete"); ev.String("sessionId") != id {
		t.Fatalf("refresh: %s", ev.Raw)
	}
	again := authenticate(t, n, q("sessionId", id), tok)
	if ev := expect(t, again, "sessionJoined"); ev.String("role") != "speaker" {
		t.Fatalf("attach: %s", ev.Raw)
	}
	// A token-only connection (no intent in the query) then creates by message.
	bare := authenticate(t, n, q(), tok)
	act(t, bare, "createSession", "sourceLanguage", "es")
	expect(t, bare, "sessionCreated")

	if strings.Contains(n.Logs.String(), tok) {
		t.Fatal("the token was logged")
	}
}

func TestAuthMessageRefusals(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	create := q("action", "createSession", "sourceLanguage", "en")
	for _, c := range []struct {
		name  string
		query string
		first func(*testing.T, *client.Conn)
		code  string
		close int
	}{
		{"bad token", create, func(t *testing.T, c *client.Conn) {
			sendJSON(t, c, map[string]any{"action": "authenticate", "token": "not.a.jwt"})
		}, "UNAUTHORIZED", 4401},
		{"no token", create, func(t *testing.T, c *client.Conn) {
			sendJSON(t, c, map[string]any{"action": "authenticate"})
		}, "UNAUTHORIZED", 4401},
		{"another message first", create, func(t *testing.T, c *client.Conn) {
			act(t, c, "heartbeat")
		}, "UNAUTHORIZED", 4401},
		{"not JSON", create, func(t *testing.T, c *client.Conn) {
			if err := c.SendText(ctx(t), []byte("token please")); err != nil {
				t.Fatal(err)
			}
		}, "UNAUTHORIZED", 4401},
		{"binary first", create, func(t *testing.T, c *client.Conn) {
			sendBin(t, c, chunk(1, 64))
		}, "UNAUTHORIZED", 4401},
		{"token in the query too", create + "&token=" + n.Token("alice"), func(*testing.T, *client.Conn) {}, "INVALID_PARAMETER", 4400},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, n, c.query+"&auth=message")
			c.first(t, conn)
			expectError(t, conn, c.code)
			if ce := expectClose(t, conn, c.close); ce.Reason != c.code {
				t.Fatalf("close reason %q, want %q", ce.Reason, c.code)
			}
		})
	}
	refusedWith(t, n, create+"&auth=header", "INVALID_PARAMETER", 4400)
	// Query tokens keep working for older clients.
	speaker(t, n, "bob")
}

// TestAuthMessageTimeout: a connection that never sends its token is
// refused with 4401 once the wait (10 s by the node's clock) is over, and
// not before.
func TestAuthMessageTimeout(t *testing.T) {
	t.Parallel()
	n := start(t, noPings)
	dctx, cancel := context.WithTimeout(context.Background(), testserver.Wait)
	defer cancel()
	nc, _, _, err := ws.Dial(dctx, n.WS(q("action", "createSession", "sourceLanguage", "en", "auth", "message")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testserver.Wait)) // a deadlock guard, not a timing assertion
	// A ping answered means the server is waiting for the token, its timer set.
	ping := func() {
		t.Helper()
		if err := wsutil.WriteClientMessage(nc, ws.OpPing, []byte("p")); err != nil {
			t.Fatal(err)
		}
		msgs, err := wsutil.ReadServerMessage(nc, nil)
		if err != nil || len(msgs) != 1 || msgs[0].OpCode != ws.OpPong {
			t.Fatalf("want a pong, got %v %v", msgs, err)
		}
	}
	ping()
	n.Clock.Advance(9 * time.Second)
	ping() // still waiting
	n.Clock.Advance(2 * time.Second)
	var sawError bool
	for {
		msgs, err := wsutil.ReadServerMessage(nc, nil)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		m := msgs[0]
		if m.OpCode == ws.OpText {
			var e struct{ Type, Code string }
			if json.Unmarshal(m.Payload, &e) != nil || e.Type != "error" || e.Code != "UNAUTHORIZED" {
				t.Fatalf("want an UNAUTHORIZED error, got %s", m.Payload)
			}
			sawError = true
			continue
		}
		if m.OpCode != ws.OpClose {
			continue
		}
		code, reason := ws.ParseCloseFrameData(m.Payload)
		if !sawError || code != 4401 || reason != "UNAUTHORIZED" {
			t.Fatalf("close %d %q after error=%v, want 4401 UNAUTHORIZED after the error", code, reason, sawError)
		}
		return
	}
}
