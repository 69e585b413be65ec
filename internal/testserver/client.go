package testserver

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
)

// Wait bounds every read of the helpers below. It is a deadlock guard, never
// a timing assertion.
const Wait = 5 * time.Second

// Ctx returns a context that ends after Wait, or with the test.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), Wait)
	t.Cleanup(cancel)
	return c
}

// Query encodes key, value pairs as a URL query.
func Query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// Dial opens a WebSocket to url; the test closes it.
func Dial(t testing.TB, url string) *client.Conn {
	t.Helper()
	c, err := client.Dial(Ctx(t), url, client.DialOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Dial opens a WebSocket to the node's /ws with query.
func (n *Node) Dial(t testing.TB, query string) *client.Conn {
	t.Helper()
	return Dial(t, n.WS(query))
}

// Expect reads until a message of type typ.
func Expect(t testing.TB, c *client.Conn, typ string) client.Event {
	t.Helper()
	ev, err := c.Expect(Ctx(t), typ)
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	return ev
}

// ExpectClose reads until the connection closes and checks the code.
func ExpectClose(t testing.TB, c *client.Conn, code int) {
	t.Helper()
	for {
		_, err := c.Next(Ctx(t))
		if err == nil {
			continue
		}
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("want close %d, got %v", code, err)
		}
		return
	}
}

// ExpectError reads until an error message and checks its code.
func ExpectError(t testing.TB, c *client.Conn, code string) client.Event {
	t.Helper()
	ev := Expect(t, c, "error")
	if ev.String("code") != code {
		t.Fatalf("error %s (%s), want %s", ev.String("code"), ev.String("message"), code)
	}
	return ev
}

// NextAudio returns the next binary audio frame, skipping JSON messages.
func NextAudio(t testing.TB, c *client.Conn) *client.AudioFrame {
	t.Helper()
	for {
		ev, err := c.Next(Ctx(t))
		if err != nil {
			t.Fatalf("next audio: %v", err)
		}
		if ev.Audio != nil {
			return ev.Audio
		}
	}
}

// Speaker creates a session over WebSocket for sub.
func (n *Node) Speaker(t testing.TB, sub string) (*client.Conn, string) {
	t.Helper()
	c := n.Dial(t, Query("action", "createSession", "sourceLanguage", "en", "token", n.Token(sub)))
	return c, Expect(t, c, "sessionCreated").String("sessionId")
}

// Listener joins session id in lang.
func (n *Node) Listener(t testing.TB, id, lang string) (*client.Conn, client.Event) {
	t.Helper()
	c := n.Dial(t, Query("sessionId", id, "targetLanguage", lang))
	return c, Expect(t, c, "sessionJoined")
}

// FreePort returns a loopback port nobody listens on, for a program a test
// starts (a private Redis, a WebDriver).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
