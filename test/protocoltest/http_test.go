package protocoltest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/server"
)

// The HTTP session API of docs/protocol.md, "HTTP session API".

// checkView checks the shape of a public session view.
func checkView(t *testing.T, ev client.Event, id, status, src string) {
	t.Helper()
	if ev.String("sessionId") != id || ev.String("status") != status || ev.String("sourceLanguage") != src {
		t.Fatalf("session = %s, want %s %s %s", ev.Raw, id, status, src)
	}
	for _, f := range []string{"qualityTier", "audioFormat"} {
		if ev.String(f) == "" {
			t.Fatalf("session has no %s: %s", f, ev.Raw)
		}
	}
	if _, ok := ev.JSON["listenerCount"].(float64); !ok {
		t.Fatalf("listenerCount missing: %s", ev.Raw)
	}
	if _, ok := ev.JSON["languageDistribution"].(map[string]any); !ok {
		t.Fatalf("languageDistribution is not an object: %s", ev.Raw)
	}
	if _, ok := ev.JSON["speakerConnected"].(bool); !ok {
		t.Fatalf("speakerConnected missing: %s", ev.Raw)
	}
	for _, f := range []string{"createdAt", "updatedAt", "expiresAt"} {
		checkMillis(t, ev, f)
	}
	if ev.Map("broadcastState") == nil {
		t.Fatalf("broadcastState missing: %s", ev.Raw)
	}
}

// noOwner checks that a body names its owner nowhere.
func noOwner(t *testing.T, raw []byte, sub string) {
	t.Helper()
	s := string(raw)
	for _, bad := range []string{sub, "owner", "Owner", `"sub"`} {
		if strings.Contains(s, bad) {
			t.Fatalf("public session view contains %q: %s", bad, s)
		}
	}
}

func TestHTTPCreateSession(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	const sub = "pastor-john-8127"
	now := n.Clock.Now()
	r := httpDo(t, n, "POST", "/sessions", n.Token(sub), map[string]any{"sourceLanguage": "es"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.Status, r.Raw)
	}
	ev := r.ev()
	id := ev.String("sessionId")
	if !sessionIDPattern.MatchString(id) {
		t.Fatalf("sessionId %q", id)
	}
	checkView(t, ev, id, "active", "es")
	if ev.String("qualityTier") != "standard" || ev.String("audioFormat") != "pcm16" || ev.Int("listenerCount") != 0 ||
		ev.Bool("speakerConnected") || len(ev.Map("languageDistribution")) != 0 {
		t.Fatalf("new session = %s", r.Raw)
	}
	if ev.Int("createdAt") != now.UnixMilli() {
		t.Fatalf("createdAt %d, want %d", ev.Int("createdAt"), now.UnixMilli())
	}
	checkBroadcastState(t, ev, false, false, 1)
	noOwner(t, r.Raw, sub)

	r = httpDo(t, n, "POST", "/sessions", n.Token(sub), map[string]any{"sourceLanguage": "FR", "qualityTier": "premium", "audioFormat": "opus"})
	if r.Status != 201 || r.ev().String("sourceLanguage") != "fr" || r.ev().String("qualityTier") != "premium" || r.ev().String("audioFormat") != "opus" {
		t.Fatalf("POST with options: %d %s", r.Status, r.Raw)
	}
	// GET is public and carries no owner either.
	g := getSession(t, n, id)
	if g.Status != 200 {
		t.Fatalf("GET: %d %s", g.Status, g.Raw)
	}
	checkView(t, g.ev(), id, "active", "es")
	noOwner(t, g.Raw, sub)
	// Nor does it once the speaker and a listener are there.
	sp := dial(t, n, q("sessionId", id, "token", n.Token(sub)))
	expect(t, sp, "sessionJoined")
	listener(t, n, id, "de")
	g = getSession(t, n, id)
	if !g.ev().Bool("speakerConnected") || g.ev().Int("listenerCount") != 1 || g.ev().Map("languageDistribution")["de"] != float64(1) {
		t.Fatalf("GET with a speaker and a listener: %s", g.Raw)
	}
	noOwner(t, g.Raw, sub)
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	alice := n.Token("alice")
	id := createHTTP(t, n, "alice", nil)
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
		details                   map[string]any
	}{
		{"POST without token", "POST", "/sessions", "", map[string]any{"sourceLanguage": "en"}, 401, "UNAUTHORIZED", nil},
		{"POST with garbage token", "POST", "/sessions", "x.y.z", map[string]any{"sourceLanguage": "en"}, 401, "UNAUTHORIZED", nil},
		{"POST with token of another key", "POST", "/sessions", foreignToken(t, n), map[string]any{"sourceLanguage": "en"}, 401, "UNAUTHORIZED", nil},
		{"POST with token without sub", "POST", "/sessions", noSubToken(t, n), map[string]any{"sourceLanguage": "en"}, 401, "UNAUTHORIZED", nil},
		{"POST malformed body", "POST", "/sessions", alice, `{"sourceLanguage":`, 400, "INVALID_MESSAGE", nil},
		{"POST array body", "POST", "/sessions", alice, `["en"]`, 400, "INVALID_MESSAGE", nil},
		{"POST empty body", "POST", "/sessions", alice, ``, 400, "INVALID_MESSAGE", nil},
		{"POST without sourceLanguage", "POST", "/sessions", alice, map[string]any{"qualityTier": "standard"}, 400, "MISSING_PARAMETER", map[string]any{"field": "sourceLanguage"}},
		{"POST unsupported sourceLanguage", "POST", "/sessions", alice, map[string]any{"sourceLanguage": "xx"}, 400, "INVALID_LANGUAGE", nil},
		{"POST bad qualityTier", "POST", "/sessions", alice, map[string]any{"sourceLanguage": "en", "qualityTier": "gold"}, 400, "INVALID_PARAMETER", map[string]any{"field": "qualityTier"}},
		{"POST bad audioFormat", "POST", "/sessions", alice, map[string]any{"sourceLanguage": "en", "audioFormat": "aac"}, 400, "INVALID_PARAMETER", map[string]any{"field": "audioFormat"}},
		{"POST sourceLanguage not a string", "POST", "/sessions", alice, map[string]any{"sourceLanguage": 5}, 400, "INVALID_PARAMETER", map[string]any{"field": "sourceLanguage"}},
		{"GET unknown", "GET", "/sessions/" + absentID, "", nil, 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": absentID}},
		{"GET malformed id", "GET", "/sessions/NOT_AN_ID", "", nil, 400, "INVALID_SESSION_ID", map[string]any{"sessionId": "NOT_AN_ID"}},
		{"PATCH without token", "PATCH", "/sessions/" + id, "", map[string]any{"status": "paused"}, 401, "UNAUTHORIZED", nil},
		{"PATCH by another user", "PATCH", "/sessions/" + id, n.Token("bob"), map[string]any{"status": "paused"}, 403, "FORBIDDEN", nil},
		{"PATCH unknown", "PATCH", "/sessions/" + absentID, alice, map[string]any{"status": "paused"}, 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": absentID}},
		{"PATCH malformed body", "PATCH", "/sessions/" + id, alice, `{status}`, 400, "INVALID_MESSAGE", nil},
		{"PATCH bad status", "PATCH", "/sessions/" + id, alice, map[string]any{"status": "sleeping"}, 400, "INVALID_PARAMETER", map[string]any{"field": "status"}},
		{"PATCH nothing to change", "PATCH", "/sessions/" + id, alice, map[string]any{}, 400, "INVALID_PARAMETERS", nil},
		{"PATCH unsupported sourceLanguage", "PATCH", "/sessions/" + id, alice, map[string]any{"sourceLanguage": "xx"}, 400, "INVALID_LANGUAGE", nil},
		{"DELETE without token", "DELETE", "/sessions/" + id, "", nil, 401, "UNAUTHORIZED", nil},
		{"DELETE by another user", "DELETE", "/sessions/" + id, n.Token("bob"), nil, 403, "FORBIDDEN", nil},
		{"DELETE unknown", "DELETE", "/sessions/" + absentID, alice, nil, 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": absentID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httpDo(t, n, tc.method, tc.path, tc.token, tc.body)
			httpErr(t, r, tc.status, tc.code, tc.details)
			if tc.token != "" && strings.Contains(string(r.Raw), tc.token) {
				t.Fatalf("error body quotes the token")
			}
		})
	}
	// None of the refused requests changed the session.
	g := getSession(t, n, id)
	checkView(t, g.ev(), id, "active", "en")
	checkBroadcastState(t, g.ev(), false, false, 1)
}

func TestHTTPPatchIsLive(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	alice := n.Token("alice")
	sp, id := speaker(t, n, "alice")
	li1, _ := listener(t, n, id, "es")
	li2, _ := listener(t, n, id, "fr", "audioEncoding", "base64")
	all := []*client.Conn{sp, li1, li2}

	n.Clock.Advance(time.Minute)
	r := httpDo(t, n, "PATCH", "/sessions/"+id, alice, map[string]any{"status": "paused"})
	if r.Status != 200 {
		t.Fatalf("PATCH paused: %d %s", r.Status, r.Raw)
	}
	checkView(t, r.ev(), id, "paused", "en")
	checkBroadcastState(t, r.ev(), true, false, 1)
	if r.ev().Int("updatedAt") != n.Clock.Now().UnixMilli() {
		t.Fatalf("updatedAt %d, want now %d", r.ev().Int("updatedAt"), n.Clock.Now().UnixMilli())
	}
	noOwner(t, r.Raw, "alice")
	for _, c := range all {
		ev := expect(t, c, "broadcastPaused")
		if ev.String("sessionId") != id {
			t.Fatalf("broadcastPaused = %s", ev.Raw)
		}
		checkBroadcastState(t, ev, true, false, 1)
	}
	if g := getSession(t, n, id); g.ev().String("status") != "paused" {
		t.Fatalf("GET after PATCH paused: %s", g.Raw)
	}
	// The speaker resumes over WebSocket: one state, HTTP shows it.
	act(t, sp, "resumeBroadcast")
	for _, c := range all {
		expect(t, c, "broadcastResumed")
	}
	if g := getSession(t, n, id); g.ev().String("status") != "active" {
		t.Fatalf("GET after resumeBroadcast: %s", g.Raw)
	}
	// A new source language and tier, live.
	r = httpDo(t, n, "PATCH", "/sessions/"+id, alice, map[string]any{"sourceLanguage": "de", "qualityTier": "premium"})
	if r.Status != 200 || r.ev().String("sourceLanguage") != "de" || r.ev().String("qualityTier") != "premium" {
		t.Fatalf("PATCH sourceLanguage: %d %s", r.Status, r.Raw)
	}
	for _, c := range []*client.Conn{li1, li2} {
		ev := expect(t, c, "languageChanged")
		if ev.String("sourceLanguage") != "de" || ev.String("sessionId") != id {
			t.Fatalf("languageChanged = %s", ev.Raw)
		}
	}
}

func TestHTTPPatchEnded(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	r := httpDo(t, n, "PATCH", "/sessions/"+id, n.Token("alice"), map[string]any{"status": "ended"})
	if r.Status != 200 {
		t.Fatalf("PATCH ended: %d %s", r.Status, r.Raw)
	}
	checkView(t, r.ev(), id, "ended", "en")
	for _, c := range []*client.Conn{sp, li} {
		ev := expect(t, c, "sessionEnded")
		if ev.String("sessionId") != id || ev.String("message") == "" {
			t.Fatalf("sessionEnded = %s", ev.Raw)
		}
		switch ev.String("reason") {
		case "speakerEnded", "deleted", "expired", "speakerTimeout":
		default:
			t.Fatalf("sessionEnded reason %q", ev.String("reason"))
		}
		expectClose(t, c, 1000)
	}
	// Ended reads as ended for 24 hours, then 404.
	g := getSession(t, n, id)
	checkView(t, g.ev(), id, "ended", "en")
	if g.ev().Bool("speakerConnected") || g.ev().Int("listenerCount") != 0 {
		t.Fatalf("ended session view: %s", g.Raw)
	}
	httpErr(t, httpDo(t, n, "PATCH", "/sessions/"+id, n.Token("alice"), map[string]any{"status": "active"}), 404, "SESSION_NOT_FOUND", nil)
	n.Clock.Advance(23 * time.Hour)
	if g := getSession(t, n, id); g.Status != 200 || g.ev().String("status") != "ended" {
		t.Fatalf("GET 23 h after the end: %d %s", g.Status, g.Raw)
	}
	n.Clock.Advance(time.Hour + time.Second)
	httpErr(t, getSession(t, n, id), 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": id})
}

func TestHTTPDelete(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	li1, _ := listener(t, n, id, "es")
	li2, _ := listener(t, n, id, "en", "action", "joinSession")
	r := httpDo(t, n, "DELETE", "/sessions/"+id, n.Token("alice"), nil)
	if r.Status != http.StatusNoContent || len(r.Raw) != 0 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Raw)
	}
	// 404 at once.
	httpErr(t, getSession(t, n, id), 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": id})
	for _, c := range []*client.Conn{li1, li2, sp} {
		ev := expect(t, c, "sessionEnded")
		if ev.String("sessionId") != id || ev.String("reason") != "deleted" || ev.String("message") == "" {
			t.Fatalf("sessionEnded = %s", ev.Raw)
		}
		expectClose(t, c, 1000)
	}
	httpErr(t, httpDo(t, n, "DELETE", "/sessions/"+id, n.Token("alice"), nil), 404, "SESSION_NOT_FOUND", nil)
	refusedWith(t, n, q("sessionId", id, "targetLanguage", "es"), "SESSION_NOT_FOUND", 4404)

	// An ended session can still be deleted, and is then 404 at once.
	sp2, id2 := speaker(t, n, "alice")
	act(t, sp2, "endSession")
	expectClose(t, sp2, 1000)
	if g := getSession(t, n, id2); g.ev().String("status") != "ended" {
		t.Fatalf("GET after endSession: %s", g.Raw)
	}
	if r := httpDo(t, n, "DELETE", "/sessions/"+id2, n.Token("alice"), nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE of an ended session: %d %s", r.Status, r.Raw)
	}
	httpErr(t, getSession(t, n, id2), 404, "SESSION_NOT_FOUND", map[string]any{"sessionId": id2})
}

// requiredLanguages are the languages the earlier deployment offered.
var requiredLanguages = []string{"en", "es", "fr", "de", "it", "pt", "ru", "ja", "ko", "zh", "ar", "hi", "nl", "pl", "tr", "sv", "da", "no", "fi"}

func TestLanguages(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	r := httpDo(t, n, "GET", "/languages", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /languages: %d", r.Status)
	}
	list, ok := r.Body["languages"].([]any)
	if !ok {
		t.Fatalf("body %s", r.Raw)
	}
	seen := map[string]bool{}
	for _, l := range list {
		m, _ := l.(map[string]any)
		ev := client.Event{JSON: m}
		code := ev.String("code")
		if len(code) != 2 || strings.ToLower(code) != code || ev.String("name") == "" || ev.String("nativeName") == "" {
			t.Fatalf("language entry %v", m)
		}
		if seen[code] {
			t.Fatalf("language %s listed twice", code)
		}
		seen[code] = true
	}
	for _, c := range requiredLanguages {
		if !seen[c] {
			t.Fatalf("language %s missing from %s", c, r.Raw)
		}
	}
	// Every listed language can be joined and spoken.
	_, id := speaker(t, n, "alice")
	for code := range seen {
		listener(t, n, id, code)
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/health"} {
		if r := httpDo(t, n, "GET", p, "", nil); r.Status != 200 {
			t.Fatalf("GET %s: %d %s", p, r.Status, r.Raw)
		}
	}
	if r := httpDo(t, n, "GET", "/health", "", nil); r.ev().String("status") != "healthy" {
		t.Fatalf("GET /health: %s", r.Raw)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.AllowedOrigins = "https://church.example" })
	id := createHTTP(t, n, "alice", nil)
	for _, path := range []string{"/sessions/" + id, "/languages"} {
		r := httpDo(t, n, "GET", path, "", nil, "Origin", "https://church.example")
		if r.Header.Get("Access-Control-Allow-Origin") != "https://church.example" {
			t.Fatalf("GET %s from an allowed origin: headers %v", path, r.Header)
		}
		r = httpDo(t, n, "GET", path, "", nil, "Origin", "https://evil.example")
		if r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("GET %s from another origin got CORS headers: %v", path, r.Header)
		}
	}
	// Preflight.
	r := httpDo(t, n, "OPTIONS", "/sessions", "", nil, "Origin", "https://church.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
	if r.Status >= 300 || r.Header.Get("Access-Control-Allow-Origin") != "https://church.example" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
	r = httpDo(t, n, "OPTIONS", "/sessions/"+id, "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin got CORS headers: %v", r.Header)
	}
}

func TestSessionsPerUserLimit(t *testing.T) {
	t.Parallel()
	n := start(t, func(c *server.Config) { c.RateSessionsPerHour = 3 })
	speaker(t, n, "alice")                        // WebSocket, query
	createHTTP(t, n, "alice", nil)                // HTTP
	c := dial(t, n, q("token", n.Token("alice"))) // WebSocket, message
	act(t, c, "createSession", "sourceLanguage", "en")
	expect(t, c, "sessionCreated")
	// The fourth, either way, is refused.
	r := httpDo(t, n, "POST", "/sessions", n.Token("alice"), map[string]any{"sourceLanguage": "en"})
	httpErr(t, r, 429, "RATE_LIMIT_EXCEEDED", map[string]any{"retryAfter": positiveNumber{}})
	if ra := r.Header.Get("Retry-After"); ra == "" || ra != strconv.Itoa(int(r.ev().Map("details")["retryAfter"].(float64))) {
		t.Fatalf("Retry-After header %q, want details.retryAfter %v", ra, r.ev().Map("details")["retryAfter"])
	}
	ev := refusedWith(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token("alice")), "RATE_LIMIT_EXCEEDED", 4429)
	checkErr(t, ev, "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
	c2 := dial(t, n, q("token", n.Token("alice")))
	act(t, c2, "createSession", "sourceLanguage", "en")
	checkErr(t, expect(t, c2, "error"), "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
	// Other users are not affected.
	createHTTP(t, n, "bob", nil)
	speaker(t, n, "carol")
	// The bucket refills over the hour.
	n.Clock.Advance(21 * time.Minute)
	createHTTP(t, n, "alice", nil)
}

// Tokens never appear in logs (section 3), whatever happens to them.
func TestTokensNeverLogged(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	good := n.Token("alice")
	n.Clock.Advance(time.Second)
	expired := n.Token("alice")        // expires after the clock's jump below
	bad := good[:len(good)-4] + "AAAA" // a broken signature
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", good))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	refusedWith(t, n, q("sessionId", id, "token", bad), "UNAUTHORIZED", 4401)
	c := dialH(t, n, q("sessionId", id), http.Header{"Authorization": {"Bearer " + bad}})
	expectClose(t, c, 4401)
	refusedWith(t, n, q("sessionId", id, "token", n.Token("bob")), "FORBIDDEN", 4403)
	httpDo(t, n, "POST", "/sessions", bad, map[string]any{"sourceLanguage": "en"})
	httpDo(t, n, "PATCH", "/sessions/"+id, good, map[string]any{"status": "paused"})
	n.Clock.Advance(2 * time.Hour)
	refusedWith(t, n, q("sessionId", id, "token", expired), "TOKEN_EXPIRED", 4401)
	httpDo(t, n, "DELETE", "/sessions/"+id, expired, nil)
	n.Stop()
	logs := n.Logs.String()
	if logs == "" {
		t.Fatal("nothing was logged: the check below would pass whatever the server logs")
	}
	for _, tok := range []string{good, bad, expired} {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, tok) || strings.Contains(logs, sig) {
			t.Fatalf("a token (or its signature) is in the logs")
		}
	}
}
