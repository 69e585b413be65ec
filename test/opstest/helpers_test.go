// Package opstest checks what an operator relies on: degradation when a
// dependency fails, shutdown and resume, TLS, metrics and what the logs may
// never contain. Every test runs real nodes on 127.0.0.1.
package opstest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

const wait = testserver.Wait

// The shared helpers of internal/testserver, under this package's short names.
var (
	ctx         = testserver.Ctx
	q           = testserver.Query
	expect      = testserver.Expect
	expectClose = testserver.ExpectClose
	nextAudio   = testserver.NextAudio
)

func dial(t *testing.T, n *testserver.Node, query string) *client.Conn {
	t.Helper()
	return n.Dial(t, query)
}

// refused checks a connect answered with error code and close 4000+status.
func refused(t *testing.T, c *client.Conn, code string, closeCode int) client.Event {
	t.Helper()
	ev := testserver.ExpectError(t, c, code)
	expectClose(t, c, closeCode)
	return ev
}

func speaker(t *testing.T, n *testserver.Node, sub string) (*client.Conn, string) {
	t.Helper()
	return n.Speaker(t, sub)
}

func listener(t *testing.T, n *testserver.Node, id, lang string) *client.Conn {
	t.Helper()
	c, _ := n.Listener(t, id, lang)
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
