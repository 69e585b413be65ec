// Package opstest checks what an operator relies on: degradation when a
// dependency fails, shutdown and resume, TLS, metrics and what the logs may
// never contain. Every test runs real nodes on 127.0.0.1.
package opstest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

const wait = 5 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func dial(t *testing.T, n *testserver.Node, query string) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), n.WS(query), client.DialOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func expect(t *testing.T, c *client.Conn, typ string) client.Event {
	t.Helper()
	ev, err := c.Expect(ctx(t), typ)
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	return ev
}

func expectClose(t *testing.T, c *client.Conn, code int) {
	t.Helper()
	for {
		_, err := c.Next(ctx(t))
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

// refused checks a connect answered with error code and close 4000+status.
func refused(t *testing.T, c *client.Conn, code string, closeCode int) client.Event {
	t.Helper()
	ev := expect(t, c, "error")
	if ev.String("code") != code {
		t.Fatalf("error %s (%s), want %s", ev.String("code"), ev.String("message"), code)
	}
	expectClose(t, c, closeCode)
	return ev
}

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
	}
}

func speaker(t *testing.T, n *testserver.Node, sub string) (*client.Conn, string) {
	t.Helper()
	c := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token(sub)))
	return c, expect(t, c, "sessionCreated").String("sessionId")
}

func listener(t *testing.T, n *testserver.Node, id, lang string) *client.Conn {
	t.Helper()
	c := dial(t, n, q("sessionId", id, "targetLanguage", lang))
	expect(t, c, "sessionJoined")
	return c
}

func httpDo(t *testing.T, method, u, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx(t), method, u, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}
