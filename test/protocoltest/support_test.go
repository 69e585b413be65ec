package protocoltest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// Helpers shared by the protocol tests, on top of helpers_test.go.

var sessionIDPattern = regexp.MustCompile(`^[a-z]+-[a-z]+-[1-9][0-9]{2}$`)

// absentID is a well-formed session ID no test node ever has: nodes start
// empty and the tests that use it create no session.
const absentID = "golden-eagle-427"

// loose lifts the per-connection heartbeat and control limits, for tests
// that send many messages on one connection and use heartbeats to prove a
// connection is still alive.
func loose(c *server.Config) {
	c.RateHeartbeatsPerMinute = 60000
	c.RateHeartbeatBurst = 10000
	c.RateControlPerSecond = 10000
}

// with combines config mutations.
func cfgs(fs ...func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		for _, f := range fs {
			f(c)
		}
	}
}

// dialH dials with extra request headers.
func dialH(t *testing.T, n *testserver.Node, query string, h http.Header) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), n.WS(query), client.DialOptions{Header: h})
	if err != nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// send writes one JSON message.
func sendJSON(t *testing.T, c *client.Conn, v any) {
	t.Helper()
	if err := c.Send(ctx(t), v); err != nil {
		t.Fatalf("send %v: %v", v, err)
	}
}

// act sends {"action": action, k: v...}.
func act(t *testing.T, c *client.Conn, action string, kv ...any) {
	t.Helper()
	m := map[string]any{"action": action}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	sendJSON(t, c, m)
}

func sendBin(t *testing.T, c *client.Conn, b []byte) {
	t.Helper()
	if err := c.SendBinary(ctx(t), b); err != nil {
		t.Fatalf("send binary: %v", err)
	}
}

// alive proves a connection is open and served: a heartbeat is acked.
func alive(t *testing.T, c *client.Conn) {
	t.Helper()
	act(t, c, "heartbeat")
	expect(t, c, "heartbeatAck")
}

// chunk is a recognizable audio chunk.
func chunk(i, size int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, size)
	b[0] = byte(i >> 8)
	return b
}

// wantAudio reads the next audio frame and checks its sequence number and
// payload.
func wantAudio(t *testing.T, c *client.Conn, seq uint32, payload []byte) *client.AudioFrame {
	t.Helper()
	f := nextAudio(t, c)
	if f.Header.Sequence != seq || !bytes.Equal(f.Chunk, payload) {
		t.Fatalf("audio frame: seq %d (%d bytes), want seq %d (%d bytes, equal=%v)",
			f.Header.Sequence, len(f.Chunk), seq, len(payload), bytes.Equal(f.Chunk, payload))
	}
	return f
}

// expectBeforeAudio reads until a JSON message of type typ and fails if any
// audio (binary or audioData) arrives first.
func expectBeforeAudio(t *testing.T, c *client.Conn, typ string) client.Event {
	t.Helper()
	for {
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if ev.IsAudio() {
			t.Fatalf("audio (seq %d) arrived before %s", seqOf(t, ev), typ)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

func seqOf(t *testing.T, ev client.Event) uint32 {
	t.Helper()
	f, err := ev.AudioFromJSON()
	if err != nil {
		t.Fatalf("audio: %v", err)
	}
	return f.Header.Sequence
}

// collectUntil returns every JSON message up to and including the first of
// type typ.
func collectUntil(t *testing.T, c *client.Conn, typ string) []client.Event {
	t.Helper()
	var out []client.Event
	for {
		ev := next(t, c)
		out = append(out, ev)
		if ev.Type == typ {
			return out
		}
	}
}

func countType(evs []client.Event, typ string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// expectStatus reads until a sessionStatus with the given updateReason.
func expectStatus(t *testing.T, c *client.Conn, reason string) client.Event {
	t.Helper()
	for {
		ev := expect(t, c, "sessionStatus")
		if ev.String("updateReason") == reason {
			return ev
		}
	}
}

// checkErr checks an error message's code, HTTP-like status and details.
func checkErr(t *testing.T, ev client.Event, code string, status int, details map[string]any) {
	t.Helper()
	if ev.Type != "error" || ev.String("code") != code {
		t.Fatalf("got %s %s (%s), want error %s", ev.Type, ev.String("code"), ev.String("message"), code)
	}
	if got := ev.Int("status"); got != int64(status) {
		t.Fatalf("%s: status %d, want %d", code, got, status)
	}
	if ev.String("message") == "" {
		t.Fatalf("%s: empty message", code)
	}
	checkMillis(t, ev, "timestamp")
	checkDetails(t, code, ev.Map("details"), details)
}

// checkDetails checks that got has every key of want; a nil want value only
// asks for presence, a positiveNumber for a number >= 1.
func checkDetails(t *testing.T, code string, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: details.%s missing (details %v)", code, k, got)
		}
		switch v := v.(type) {
		case nil:
		case positiveNumber:
			f, ok := g.(float64)
			if !ok || f < 1 || f != math.Trunc(f) {
				t.Fatalf("%s: details.%s = %v, want a whole number >= 1", code, k, g)
			}
		case int:
			if f, ok := g.(float64); !ok || f != float64(v) {
				t.Fatalf("%s: details.%s = %v, want %d", code, k, g, v)
			}
		default:
			if g != v {
				t.Fatalf("%s: details.%s = %v, want %v", code, k, g, v)
			}
		}
	}
}

type positiveNumber struct{}

// checkMillis checks that a field is an integer Unix-millisecond time in a
// plausible range (the fake clocks start in 2026).
func checkMillis(t *testing.T, ev client.Event, field string) int64 {
	t.Helper()
	v, ok := ev.JSON[field].(float64)
	if !ok || v != math.Trunc(v) || v < 1.7e12 || v > 2.2e12 {
		t.Fatalf("%s.%s = %v (%T), want integer Unix milliseconds", ev.Type, field, ev.JSON[field], ev.JSON[field])
	}
	return int64(v)
}

// checkBroadcastState checks the shape of a broadcastState object.
func checkBroadcastState(t *testing.T, ev client.Event, paused, muted bool, volume float64) {
	t.Helper()
	bs := ev.Map("broadcastState")
	if bs == nil {
		t.Fatalf("%s has no broadcastState: %s", ev.Type, ev.Raw)
	}
	sub := client.Event{Type: ev.Type + ".broadcastState", JSON: bs}
	if _, ok := bs["isActive"].(bool); !ok {
		t.Fatalf("broadcastState.isActive missing: %v", bs)
	}
	if sub.Bool("isPaused") != paused || sub.Bool("isMuted") != muted || sub.Float("volume") != volume {
		t.Fatalf("%s broadcastState = %v, want paused %v muted %v volume %v", ev.Type, bs, paused, muted, volume)
	}
	checkMillis(t, sub, "lastStateChange")
}

// httpResp is a decoded HTTP answer.
type httpResp struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r httpResp) ev() client.Event { return client.Event{Type: "http", JSON: r.Body, Raw: r.Raw} }

// do sends an HTTP request to the node; token, when set, goes in
// Authorization: Bearer; body, when not nil, is JSON-encoded unless it is a
// string (sent as is).
func httpDo(t *testing.T, n *testserver.Node, method, path, token string, body any, hdr ...string) httpResp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := httpResp{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
		}
	}
	return r
}

// httpErr checks an HTTP error answer: status, and the body shape
// {error, code, message, details, timestamp}.
func httpErr(t *testing.T, r httpResp, status int, code string, details map[string]any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("HTTP status %d, want %d: %s", r.Status, status, r.Raw)
	}
	ev := r.ev()
	if ev.String("code") != code || ev.String("message") == "" || ev.String("error") == "" {
		t.Fatalf("error body %s, want code %s with error and message", r.Raw, code)
	}
	if _, ok := r.Body["details"].(map[string]any); !ok {
		t.Fatalf("error body has no details object: %s", r.Raw)
	}
	checkMillis(t, ev, "timestamp")
	checkDetails(t, code, ev.Map("details"), details)
}

// createHTTP creates a session over HTTP for sub and returns its ID.
func createHTTP(t *testing.T, n *testserver.Node, sub string, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{"sourceLanguage": "en"}
	}
	r := httpDo(t, n, "POST", "/sessions", n.Token(sub), body)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /sessions: %d %s", r.Status, r.Raw)
	}
	return r.ev().String("sessionId")
}

// getSession reads GET /sessions/{id}.
func getSession(t *testing.T, n *testserver.Node, id string) httpResp {
	t.Helper()
	return httpDo(t, n, "GET", "/sessions/"+id, "", nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
