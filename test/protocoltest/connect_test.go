package protocoltest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// Connect flows of docs/protocol.md, "Connecting to /ws", and every error found while
// connecting.

func TestCreateSessionQuery(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	cases := []struct {
		name               string
		src                string
		extra              []string
		lang, tier, format string
	}{
		{"defaults", "en", nil, "en", "standard", "pcm16"},
		{"explicit", "es", []string{"qualityTier", "premium", "audioFormat", "opus"}, "es", "premium", "opus"},
		{"upper-case values are lower-cased", "EN", []string{"qualityTier", "STANDARD", "audioFormat", "PCM16"}, "en", "standard", "pcm16"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, n, q(append([]string{"action", "createSession", "sourceLanguage", tc.src, "token", n.Token("alice")}, tc.extra...)...))
			ev := expect(t, c, "sessionCreated")
			id := ev.String("sessionId")
			if !sessionIDPattern.MatchString(id) || len(id) > 64 {
				t.Fatalf("sessionId %q does not match the ID format", id)
			}
			if ev.String("sourceLanguage") != tc.lang || ev.String("qualityTier") != tc.tier || ev.String("audioFormat") != tc.format {
				t.Fatalf("sessionCreated = %s", ev.Raw)
			}
			cid := ev.String("connectionId")
			if cid == "" || seen[cid] || seen[id] {
				t.Fatalf("connectionId %q / sessionId %q not new", cid, id)
			}
			seen[cid], seen[id] = true, true
			checkMillis(t, ev, "timestamp")
			// The session ends by itself after the maximum duration (24 h).
			if got, want := checkMillis(t, ev, "expiresAt"), n.Clock.Now().Add(24*time.Hour).UnixMilli(); got != want {
				t.Fatalf("expiresAt = %d, want %d", got, want)
			}
			// The session exists, with the speaker attached.
			r := getSession(t, n, id)
			if r.Status != 200 || r.ev().String("status") != "active" || !r.ev().Bool("speakerConnected") ||
				r.ev().String("audioFormat") != tc.format || r.ev().String("qualityTier") != tc.tier {
				t.Fatalf("GET session: %d %s", r.Status, r.Raw)
			}
		})
	}
}

func TestSpeakerTokenInHeader(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	c := dialH(t, n, q("action", "createSession", "sourceLanguage", "de"),
		http.Header{"Authorization": {"Bearer " + n.Token("alice")}})
	ev := expect(t, c, "sessionCreated")
	if ev.String("sourceLanguage") != "de" {
		t.Fatalf("sessionCreated = %s", ev.Raw)
	}
	// The owner is the header token's sub: alice may attach, bob may not.
	id := ev.String("sessionId")
	refusedWith(t, n, q("sessionId", id, "token", n.Token("bob")), "FORBIDDEN", 4403)
	sp := dialH(t, n, q("sessionId", id), http.Header{"Authorization": {"bearer " + n.Token("alice")}})
	if j := expect(t, sp, "sessionJoined"); j.String("role") != "speaker" {
		t.Fatalf("sessionJoined = %s", j.Raw)
	}
}

func TestQueryTokenWinsOverHeader(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	// A valid query token with a garbage header: accepted.
	c := dialH(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token("alice")),
		http.Header{"Authorization": {"Bearer not-a-token"}})
	id := expect(t, c, "sessionCreated").String("sessionId")
	// The session belongs to the query token's sub, not the header's.
	c2 := dialH(t, n, q("sessionId", id, "token", n.Token("bob")),
		http.Header{"Authorization": {"Bearer " + n.Token("alice")}})
	expectError(t, c2, "FORBIDDEN")
	expectClose(t, c2, 4403)
	// A garbage query token with a valid header: refused.
	c3 := dialH(t, n, q("action", "createSession", "sourceLanguage", "en", "token", "not-a-token"),
		http.Header{"Authorization": {"Bearer " + n.Token("alice")}})
	expectError(t, c3, "UNAUTHORIZED")
	expectClose(t, c3, 4401)
}

func TestCreateSessionMessage(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	c := dial(t, n, q("token", n.Token("alice")))
	alive(t, c) // connected, nothing sent yet
	act(t, c, "createSession", "sourceLanguage", "fr", "audioFormat", "opus")
	ev := expect(t, c, "sessionCreated")
	if !sessionIDPattern.MatchString(ev.String("sessionId")) || ev.String("sourceLanguage") != "fr" ||
		ev.String("qualityTier") != "standard" || ev.String("audioFormat") != "opus" || ev.String("connectionId") == "" {
		t.Fatalf("sessionCreated = %s", ev.Raw)
	}
	checkMillis(t, ev, "expiresAt")
	// A bad createSession message is an error reply, not a close.
	c2 := dial(t, n, q("token", n.Token("alice")))
	act(t, c2, "createSession", "sourceLanguage", "xx")
	checkErr(t, expect(t, c2, "error"), "INVALID_LANGUAGE", 400, nil)
	act(t, c2, "createSession")
	checkErr(t, expect(t, c2, "error"), "MISSING_PARAMETER", 400, map[string]any{"field": "sourceLanguage"})
	alive(t, c2)
	// Without a token, createSession is UNAUTHORIZED, and still no close.
	c3 := dial(t, n, "")
	act(t, c3, "createSession", "sourceLanguage", "en")
	checkErr(t, expect(t, c3, "error"), "UNAUTHORIZED", 401, nil)
	alive(t, c3)
	// A second createSession on a speaker connection is refused.
	act(t, c, "createSession", "sourceLanguage", "en")
	checkErr(t, expect(t, c, "error"), "UNAUTHORIZED_ACTION", 403, nil)
	alive(t, c)
}

func TestSpeakerAttachAfterHTTPCreate(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	for _, extra := range [][]string{nil, {"action", "joinSession", "role", "speaker"}} {
		name := "plain"
		if extra != nil {
			name = "joinSession-role-speaker"
		}
		t.Run(name, func(t *testing.T) {
			id := createHTTP(t, n, "alice", map[string]any{"sourceLanguage": "es", "qualityTier": "premium"})
			if r := getSession(t, n, id); r.ev().Bool("speakerConnected") {
				t.Fatalf("speaker connected before attaching: %s", r.Raw)
			}
			li, _ := listener(t, n, id, "fr") // listeners may wait for the speaker
			sp := dial(t, n, q(append([]string{"sessionId", id, "token", n.Token("alice")}, extra...)...))
			ev := expect(t, sp, "sessionJoined")
			if ev.String("role") != "speaker" || ev.String("sessionId") != id || ev.String("sourceLanguage") != "es" ||
				ev.String("connectionId") == "" || ev.Int("listenerCount") != 1 || ev.Has("targetLanguage") {
				t.Fatalf("sessionJoined = %s", ev.Raw)
			}
			checkBroadcastState(t, ev, false, false, 1)
			if r := getSession(t, n, id); !r.ev().Bool("speakerConnected") {
				t.Fatalf("speaker not connected after attaching: %s", r.Raw)
			}
			// The waiting listener hears the speaker.
			sendBin(t, sp, chunk(1, 100))
			wantAudio(t, li, 0, chunk(1, 100))
		})
	}
}

func TestListenerJoinEncodings(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	cases := []struct {
		name   string
		query  []string
		base64 bool
	}{
		{"plain query defaults to binary", []string{"sessionId", id, "targetLanguage", "es"}, false},
		{"legacy joinSession query defaults to base64", []string{"action", "joinSession", "sessionId", id, "targetLanguage", "es"}, true},
		{"legacy query with explicit binary", []string{"action", "joinSession", "sessionId", id, "targetLanguage", "es", "audioEncoding", "binary"}, false},
		{"plain query with explicit base64", []string{"sessionId", id, "targetLanguage", "es", "audioEncoding", "base64"}, true},
		{"upper-case language code", []string{"sessionId", id, "targetLanguage", "ES"}, false},
	}
	conns := make([]*client.Conn, len(cases))
	for i, tc := range cases {
		c := dial(t, n, q(tc.query...))
		ev := expect(t, c, "sessionJoined")
		if ev.String("role") != "listener" || ev.String("sessionId") != id || ev.String("targetLanguage") != "es" ||
			ev.String("sourceLanguage") != "en" || ev.String("connectionId") == "" || ev.Int("listenerCount") != int64(i+1) {
			t.Fatalf("%s: sessionJoined = %s", tc.name, ev.Raw)
		}
		checkMillis(t, ev, "timestamp")
		checkBroadcastState(t, ev, false, false, 1)
		conns[i] = c
	}
	payload := chunk(7, 320)
	sendBin(t, sp, payload)
	for i, tc := range cases {
		ev, err := conns[i].Next(ctx(t))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		switch {
		case tc.base64 && ev.Type != "audioData":
			t.Fatalf("%s: got %q (binary %v), want an audioData message", tc.name, ev.Type, ev.Audio != nil)
		case !tc.base64 && ev.Audio == nil:
			t.Fatalf("%s: got %q, want a binary frame", tc.name, ev.Type)
		}
		f, err := ev.AudioFromJSON()
		if err != nil || f.Header.Sequence != 0 || string(f.Chunk) != string(payload) {
			t.Fatalf("%s: audio %+v %v", tc.name, f, err)
		}
	}
}

func TestBareConnectionJoinsByMessage(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	c := dial(t, n, "")
	alive(t, c)
	act(t, c, "joinSession", "sessionId", id, "targetLanguage", "pt")
	ev := expect(t, c, "sessionJoined")
	if ev.String("role") != "listener" || ev.String("targetLanguage") != "pt" || ev.Int("listenerCount") != 1 {
		t.Fatalf("sessionJoined = %s", ev.Raw)
	}
	sendBin(t, sp, chunk(1, 10))
	// Not the legacy query: binary, the default.
	if ev, err := c.Next(ctx(t)); err != nil || ev.Audio == nil || ev.Audio.Header.Sequence != 0 {
		t.Fatalf("want a binary frame with seq 0, got %q %v", ev.Type, err)
	}
	// A bad joinSession message is an error reply, not a close.
	c2 := dial(t, n, "")
	act(t, c2, "joinSession", "sessionId", absentID, "targetLanguage", "pt")
	checkErr(t, expect(t, c2, "error"), "SESSION_NOT_FOUND", 404, map[string]any{"sessionId": absentID})
	act(t, c2, "joinSession", "sessionId", id)
	checkErr(t, expect(t, c2, "error"), "MISSING_PARAMETER", 400, map[string]any{"field": "targetLanguage"})
	alive(t, c2)
}

func TestSpeakerRefreshNewConnection(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	old, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	nw := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "speaker", "token", n.Token("alice")))
	ev := expect(t, nw, "connectionRefreshComplete")
	if ev.String("sessionId") != id || ev.String("role") != "speaker" || ev.String("sourceLanguage") != "en" ||
		ev.String("connectionId") == "" || ev.Has("targetLanguage") {
		t.Fatalf("connectionRefreshComplete = %s", ev.Raw)
	}
	// During the overlap chunks on either connection are accepted, with one
	// continuous sequence.
	sendBin(t, old, chunk(1, 50))
	wantAudio(t, li, 0, chunk(1, 50))
	sendBin(t, nw, chunk(2, 50))
	wantAudio(t, li, 1, chunk(2, 50))
	// Two seconds after the swap the old connection is closed with 1000.
	n.Clock.Advance(2 * time.Second)
	expectClose(t, old, 1000)
	sendBin(t, nw, chunk(3, 50))
	if f := expectAudioNoPresence(t, li); f.Header.Sequence != 2 {
		t.Fatalf("seq %d after the refresh, want 2", f.Header.Sequence)
	}
	// A refresh by someone else, or of an unknown session, is refused.
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "role", "speaker", "token", n.Token("bob")), "FORBIDDEN", 4403)
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "role", "speaker"), "UNAUTHORIZED", 4401)
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", absentID, "role", "speaker", "token", n.Token("alice")), "SESSION_NOT_FOUND", 4404)
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "token", n.Token("alice")), "MISSING_PARAMETER", 4400)
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "role", "admin", "token", n.Token("alice")), "INVALID_PARAMETER", 4400)
}

// expectAudioNoPresence reads the next audio frame, failing on a
// speakerDisconnected on the way: a refresh is not a speaker drop.
func expectAudioNoPresence(t *testing.T, c *client.Conn) *client.AudioFrame {
	t.Helper()
	for {
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "speakerDisconnected" || ev.Type == "sessionEnded" {
			t.Fatalf("got %s: %s", ev.Type, ev.Raw)
		}
		if ev.IsAudio() {
			f, _ := ev.AudioFromJSON()
			return f
		}
	}
}

func TestListenerRefreshNewConnection(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.MaxListenersPerSession = 1 })
	sp, id := speaker(t, n, "alice")
	old, joined := listener(t, n, id, "es")
	// Without previousConnectionId a refresh is a join, and the session is full.
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener", "targetLanguage", "es"), "SESSION_FULL", 4503)
	// Naming the connection it replaces, it may exceed the cap.
	nw := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener", "targetLanguage", "es",
		"previousConnectionId", joined.String("connectionId")))
	ev := expect(t, nw, "connectionRefreshComplete")
	if ev.String("sessionId") != id || ev.String("role") != "listener" || ev.String("targetLanguage") != "es" ||
		ev.String("sourceLanguage") != "en" || ev.String("connectionId") == "" || ev.String("connectionId") == joined.String("connectionId") {
		t.Fatalf("connectionRefreshComplete = %s", ev.Raw)
	}
	// Both get the audio during the overlap, with the same sequence numbers.
	sendBin(t, sp, chunk(1, 30))
	wantAudio(t, old, 0, chunk(1, 30))
	wantAudio(t, nw, 0, chunk(1, 30))
	n.Clock.Advance(2 * time.Second)
	expectClose(t, old, 1000)
	sendBin(t, sp, chunk(2, 30))
	wantAudio(t, nw, 1, chunk(2, 30))
	// Refresh errors are connect errors.
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener"), "MISSING_PARAMETER", 4400)
	refusedWith(t, n, q("action", "refreshConnection", "sessionId", absentID, "role", "listener", "targetLanguage", "es"), "SESSION_NOT_FOUND", 4404)
}

func TestSpeakerReplacedBySecondAttach(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	old, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	sendBin(t, old, chunk(1, 20))
	wantAudio(t, li, 0, chunk(1, 20))

	nw := dial(t, n, q("sessionId", id, "token", n.Token("alice")))
	if ev := expect(t, nw, "sessionJoined"); ev.String("role") != "speaker" || ev.Int("listenerCount") != 1 {
		t.Fatalf("sessionJoined = %s", ev.Raw)
	}
	ev := expect(t, old, "connectionReplaced")
	if ev.String("sessionId") != id {
		t.Fatalf("connectionReplaced = %s", ev.Raw)
	}
	checkMillis(t, ev, "timestamp")
	expectClose(t, old, 1000)
	sendBin(t, nw, chunk(2, 20))
	if f := expectAudioNoPresence(t, li); f.Header.Sequence != 1 || string(f.Chunk) != string(chunk(2, 20)) {
		t.Fatalf("audio after the replacement: seq %d", f.Header.Sequence)
	}
	if r := getSession(t, n, id); !r.ev().Bool("speakerConnected") || r.ev().String("status") != "active" {
		t.Fatalf("GET after replacement: %s", r.Raw)
	}
}

// noSubToken is an HS256 token the node accepts in every way but its sub.
func noSubToken(t *testing.T, n *testserver.Node) string {
	t.Helper()
	now := n.Clock.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(testserver.Secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func foreignToken(t *testing.T, n *testserver.Node) string {
	t.Helper()
	now := n.Clock.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte("another-secret-another-secret-another-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.MaxListenersPerSession = 1 })
	_, id := speaker(t, n, "alice")
	full := createHTTP(t, n, "alice", nil)
	listener(t, n, full, "es")
	alice := n.Token("alice")
	create := func(kv ...string) string {
		return q(append([]string{"action", "createSession", "token", alice}, kv...)...)
	}
	long := strings.Repeat("a", 70) + "-b-123"
	cases := []struct {
		name    string
		query   string
		code    string
		status  int
		details map[string]any
	}{
		{"create without token", q("action", "createSession", "sourceLanguage", "en"), "UNAUTHORIZED", 401, nil},
		{"create with garbage token", q("action", "createSession", "sourceLanguage", "en", "token", "abc.def.ghi"), "UNAUTHORIZED", 401, nil},
		{"create with a token signed with another secret", q("action", "createSession", "sourceLanguage", "en", "token", foreignToken(t, n)), "UNAUTHORIZED", 401, nil},
		{"create with a token without sub", q("action", "createSession", "sourceLanguage", "en", "token", noSubToken(t, n)), "UNAUTHORIZED", 401, nil},
		{"attach without token", q("action", "joinSession", "role", "speaker", "sessionId", id), "UNAUTHORIZED", 401, nil},
		{"attach by another user", q("sessionId", id, "token", n.Token("bob")), "FORBIDDEN", 403, map[string]any{"sessionId": id}},
		{"attach with a token without sub", q("sessionId", id, "token", noSubToken(t, n)), "UNAUTHORIZED", 401, nil},
		{"attach to unknown session", q("sessionId", absentID, "token", alice), "SESSION_NOT_FOUND", 404, map[string]any{"sessionId": absentID}},
		{"attach without sessionId", q("action", "joinSession", "role", "speaker", "token", alice), "MISSING_PARAMETER", 400, map[string]any{"field": "sessionId"}},
		{"listener to unknown session", q("sessionId", absentID, "targetLanguage", "es"), "SESSION_NOT_FOUND", 404, map[string]any{"sessionId": absentID}},
		{"malformed session id", q("sessionId", "Golden_Eagle", "targetLanguage", "es"), "INVALID_SESSION_ID", 400, map[string]any{"sessionId": "Golden_Eagle"}},
		{"session id number out of range", q("sessionId", "golden-eagle-042", "targetLanguage", "es"), "INVALID_SESSION_ID", 400, map[string]any{"sessionId": nil}},
		{"session id too long", q("sessionId", long, "targetLanguage", "es"), "INVALID_SESSION_ID", 400, map[string]any{"sessionId": nil}},
		{"speaker attach with malformed id", q("sessionId", "nope", "token", alice), "INVALID_SESSION_ID", 400, map[string]any{"sessionId": "nope"}},
		{"listener without targetLanguage", q("action", "joinSession", "sessionId", id), "MISSING_PARAMETER", 400, map[string]any{"field": "targetLanguage"}},
		{"listener without targetLanguage, plain", q("sessionId", id), "MISSING_PARAMETER", 400, map[string]any{"field": "targetLanguage"}},
		{"listener with empty targetLanguage", q("sessionId", id, "targetLanguage", ""), "MISSING_PARAMETER", 400, map[string]any{"field": "targetLanguage"}},
		{"listener without sessionId", q("targetLanguage", "es"), "MISSING_PARAMETER", 400, map[string]any{"field": "sessionId"}},
		{"malformed language code", q("sessionId", id, "targetLanguage", "spa"), "INVALID_PARAMETER", 400, map[string]any{"field": "targetLanguage"}},
		{"malformed language code, digits", q("sessionId", id, "targetLanguage", "e5"), "INVALID_PARAMETER", 400, map[string]any{"field": "targetLanguage"}},
		{"unsupported language", q("sessionId", id, "targetLanguage", "xx"), "UNSUPPORTED_LANGUAGE", 400, map[string]any{"field": "targetLanguage", "languageCode": "xx"}},
		{"unsupported language, upper case", q("sessionId", id, "targetLanguage", "QQ"), "UNSUPPORTED_LANGUAGE", 400, map[string]any{"languageCode": "qq"}},
		{"bad audioEncoding", q("sessionId", id, "targetLanguage", "es", "audioEncoding", "mp3"), "INVALID_PARAMETER", 400, map[string]any{"field": "audioEncoding"}},
		{"bad role", q("action", "joinSession", "sessionId", id, "role", "admin"), "INVALID_PARAMETER", 400, map[string]any{"field": "role"}},
		{"create without sourceLanguage", create(), "MISSING_PARAMETER", 400, map[string]any{"field": "sourceLanguage"}},
		{"unsupported source language", create("sourceLanguage", "xx"), "INVALID_LANGUAGE", 400, nil},
		{"bad qualityTier", create("sourceLanguage", "en", "qualityTier", "ultra"), "INVALID_PARAMETER", 400, map[string]any{"field": "qualityTier"}},
		{"bad audioFormat", create("sourceLanguage", "en", "audioFormat", "mp3"), "INVALID_PARAMETER", 400, map[string]any{"field": "audioFormat"}},
		{"unknown action", q("action", "dance", "sessionId", id), "INVALID_ACTION", 400, nil},
		{"session full", q("sessionId", full, "targetLanguage", "fr"), "SESSION_FULL", 503, map[string]any{"maxListeners": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, n, tc.query)
			// Exactly one message, the error, then the close.
			ev, err := c.Next(ctx(t))
			if err != nil {
				t.Fatalf("first frame: %v", err)
			}
			checkErr(t, ev, tc.code, tc.status, tc.details)
			if _, err := c.Next(ctx(t)); !isCloseWith(err, 4000+tc.status, tc.code) {
				t.Fatalf("after the error: %v, want close %d %s", err, 4000+tc.status, tc.code)
			}
			if strings.Contains(string(ev.Raw), alice) {
				t.Fatalf("the error quotes the token: %s", ev.Raw)
			}
		})
	}
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	tok := n.Token("alice") // valid for an hour
	id := createHTTP(t, n, "alice", nil)
	n.Clock.Advance(time.Hour + 2*time.Minute) // past expiry and any leeway
	ev := refusedWith(t, n, q("action", "createSession", "sourceLanguage", "en", "token", tok), "TOKEN_EXPIRED", 4401)
	checkErr(t, ev, "TOKEN_EXPIRED", 401, nil)
	refusedWith(t, n, q("sessionId", id, "token", tok), "TOKEN_EXPIRED", 4401)
	httpErr(t, httpDo(t, n, "POST", "/sessions", tok, map[string]any{"sourceLanguage": "en"}), 401, "TOKEN_EXPIRED", nil)
	// A fresh token works.
	sp := dial(t, n, q("sessionId", id, "token", n.Token("alice")))
	expect(t, sp, "sessionJoined")
}

func TestEndedSessionRefusesConnections(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	act(t, sp, "endSession")
	expect(t, sp, "sessionEnded")
	expectClose(t, sp, 1000)
	for _, query := range []string{
		q("sessionId", id, "targetLanguage", "es"),
		q("action", "joinSession", "sessionId", id, "targetLanguage", "es"),
		q("sessionId", id, "token", n.Token("alice")),
		q("action", "refreshConnection", "role", "speaker", "sessionId", id, "token", n.Token("alice")),
		q("action", "refreshConnection", "role", "listener", "sessionId", id, "targetLanguage", "es"),
	} {
		ev := refusedWith(t, n, query, "SESSION_NOT_FOUND", 4404)
		checkErr(t, ev, "SESSION_NOT_FOUND", 404, map[string]any{"sessionId": id})
	}
}

func TestNonUpgradeRequest(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	r := httpDo(t, n, "GET", "/ws?sessionId="+absentID+"&targetLanguage=es", "", nil)
	if r.Status != http.StatusUpgradeRequired || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("GET /ws without upgrade: %d %v, want 426 with Upgrade: websocket", r.Status, r.Header)
	}
	// Nor is any other method.
	if r := httpDo(t, n, "POST", "/ws", "", nil); r.Status < 400 {
		t.Fatalf("POST /ws: %d", r.Status)
	}
}

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.AllowedOrigins = "https://church.example, https://app.example/" })
	_, id := speaker(t, n, "alice") // no Origin: not a browser, allowed
	for _, origin := range []string{"https://evil.example", "null", "https://church.example.evil.example"} {
		c := dialH(t, n, q("sessionId", id, "targetLanguage", "es"), http.Header{"Origin": {origin}})
		ev := expectError(t, c, "FORBIDDEN")
		checkErr(t, ev, "FORBIDDEN", 403, nil)
		if ce := expectClose(t, c, 4403); ce.Reason != "FORBIDDEN" {
			t.Fatalf("close reason %q", ce.Reason)
		}
	}
	for _, origin := range []string{"https://church.example", "https://APP.example"} {
		c := dialH(t, n, q("sessionId", id, "targetLanguage", "es"), http.Header{"Origin": {origin}})
		expect(t, c, "sessionJoined")
	}
}

func TestOriginSameOriginByDefault(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	_, id := speaker(t, n, "alice")
	c := dialH(t, n, q("sessionId", id, "targetLanguage", "es"), http.Header{"Origin": {n.URL}})
	expect(t, c, "sessionJoined")
	c2 := dialH(t, n, q("sessionId", id, "targetLanguage", "es"), http.Header{"Origin": {"https://elsewhere.example"}})
	expectError(t, c2, "FORBIDDEN")
	expectClose(t, c2, 4403)
}

func TestConnectRateLimit(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) {
		c.RateConnectsBurst = 3
		c.RateConnectsPerMinute = 6 // one every 10 s
	})
	_, id := speaker(t, n, "alice") // 1
	listener(t, n, id, "es")        // 2
	listener(t, n, id, "fr")        // 3
	ev := refusedWith(t, n, q("sessionId", id, "targetLanguage", "de"), "RATE_LIMIT_EXCEEDED", 4429)
	checkErr(t, ev, "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
	if ra := ev.Map("details")["retryAfter"].(float64); ra > 10 {
		t.Fatalf("retryAfter %v, want at most the 10 s refill", ra)
	}
	// Even a speaker's attempt counts.
	refusedWith(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token("bob")), "RATE_LIMIT_EXCEEDED", 4429)
	n.Clock.Advance(11 * time.Second)
	listener(t, n, id, "de")
}

func TestGlobalConnectionCap(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.MaxConnections = 2 })
	_, id := speaker(t, n, "alice")
	listener(t, n, id, "es")
	_, err := client.Dial(ctx(t), n.WS(q("sessionId", id, "targetLanguage", "fr")), client.DialOptions{})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Details["retryAfter"] == nil {
		t.Fatalf("dial past the cap: %v, want a plain HTTP 503 with Retry-After", err)
	}
}

func isCloseWith(err error, code int, reason string) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) && ce.Code == code && ce.Reason == reason
}
