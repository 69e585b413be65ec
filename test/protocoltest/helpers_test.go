// Package protocoltest checks the wire contract end to end: a real node on
// 127.0.0.1, real WebSocket clients, every flow and error of docs/protocol.md.
package protocoltest

import (
	"context"
	"errors"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

func start(t *testing.T, mutate func(*server.Config)) *testserver.Node {
	t.Helper()
	return testserver.Start(t, mutate)
}

// ctx bounds every read in these tests; it is a deadlock guard, never a
// timing assertion.
func ctx(t *testing.T) context.Context { return testserver.Ctx(t) }

func dial(t *testing.T, n *testserver.Node, query string) *client.Conn {
	t.Helper()
	return n.Dial(t, query)
}

func expect(t *testing.T, c *client.Conn, typ string) client.Event {
	t.Helper()
	return testserver.Expect(t, c, typ)
}

// next returns the next JSON message, skipping audio.
func next(t *testing.T, c *client.Conn) client.Event {
	t.Helper()
	for {
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatalf("next message: %v", err)
		}
		if ev.Audio == nil {
			return ev
		}
	}
}

// nextAudio returns the next audio frame, skipping JSON messages other than
// audioData.
func nextAudio(t *testing.T, c *client.Conn) *client.AudioFrame {
	t.Helper()
	for {
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatalf("next audio: %v", err)
		}
		if ev.Audio != nil {
			return ev.Audio
		}
		if ev.Type == "audioData" {
			f, err := ev.AudioFromJSON()
			if err != nil {
				t.Fatalf("audioData: %v", err)
			}
			return f
		}
	}
}

// expectError reads until an error message and checks its code.
func expectError(t *testing.T, c *client.Conn, code string) client.Event {
	t.Helper()
	ev := expect(t, c, "error")
	if got := ev.String("code"); got != code {
		t.Fatalf("error code = %s (%s), want %s", got, ev.String("message"), code)
	}
	return ev
}

// expectClose reads until the connection closes and checks the close code.
func expectClose(t *testing.T, c *client.Conn, code int) *client.CloseError {
	t.Helper()
	for {
		_, err := c.Next(ctx(t))
		if err == nil {
			continue
		}
		var ce *client.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want close %d, got %v", code, err)
		}
		if ce.Code != code {
			t.Fatalf("close code = %d (%q), want %d", ce.Code, ce.Reason, code)
		}
		return ce
	}
}

// refusedWith checks a connect refused with an error message and a 4xxx
// close.
func refusedWith(t *testing.T, n *testserver.Node, query, code string, closeCode int) client.Event {
	t.Helper()
	c := dial(t, n, query)
	ev := expectError(t, c, code)
	ce := expectClose(t, c, closeCode)
	if ce.Reason != code {
		t.Fatalf("close reason = %q, want %q", ce.Reason, code)
	}
	return ev
}

func q(kv ...string) string { return testserver.Query(kv...) }

// speaker creates a session over WebSocket and returns it with its ID.
func speaker(t *testing.T, n *testserver.Node, sub string) (*client.Conn, string) {
	t.Helper()
	c := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token(sub)))
	ev := expect(t, c, "sessionCreated")
	return c, ev.String("sessionId")
}

// listener joins id in lang and returns the connection and sessionJoined.
func listener(t *testing.T, n *testserver.Node, id, lang string, extra ...string) (*client.Conn, client.Event) {
	t.Helper()
	c := dial(t, n, q(append([]string{"sessionId", id, "targetLanguage", lang}, extra...)...))
	return c, expect(t, c, "sessionJoined")
}
