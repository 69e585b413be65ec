package protocoltest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
)

// Client actions of docs/protocol.md, "Client → server messages" and the answers to them.

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	bare := dial(t, n, "")
	for _, c := range []*client.Conn{sp, li, bare} {
		act(t, c, "heartbeat", "timestamp", 1700000000123)
		ev := expect(t, c, "heartbeatAck")
		checkMillis(t, ev, "timestamp")
		act(t, c, "heartbeat") // timestamp is optional
		expect(t, c, "heartbeatAck")
	}
}

func TestHeartbeatFloodIsRateLimitedWithoutClose(t *testing.T) {
	t.Parallel()
	n := start(t, nil) // 2 per minute, burst 3
	sp, _ := speaker(t, n, "alice")
	for i := 0; i < 6; i++ {
		act(t, sp, "heartbeat")
	}
	act(t, sp, "getSessionStatus")
	evs := collectUntil(t, sp, "sessionStatus")
	if acks, errs := countType(evs, "heartbeatAck"), countType(evs, "error"); acks != 3 || errs != 1 {
		t.Fatalf("6 heartbeats at once: %d acks and %d errors, want 3 and 1 (at most one error a second)", acks, errs)
	}
	for _, ev := range evs {
		if ev.Type == "error" {
			checkErr(t, ev, "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
		}
	}
	// The connection lives on, and heartbeats are answered again once the
	// bucket has refilled.
	n.Clock.Advance(31 * time.Second)
	act(t, sp, "heartbeat")
	expect(t, sp, "heartbeatAck")
}

func TestBroadcastControls(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li1, _ := listener(t, n, id, "es")
	li2, _ := listener(t, n, id, "fr", "audioEncoding", "base64")
	all := []*client.Conn{sp, li1, li2}

	steps := []struct {
		msg           map[string]any
		typ           string
		paused, muted bool
		volume        float64
		status        string
	}{
		{map[string]any{"action": "pauseBroadcast"}, "broadcastPaused", true, false, 1, "paused"},
		{map[string]any{"action": "resumeBroadcast"}, "broadcastResumed", false, false, 1, "active"},
		{map[string]any{"action": "muteBroadcast"}, "broadcastMuted", false, true, 1, "active"},
		{map[string]any{"action": "unmuteBroadcast"}, "broadcastUnmuted", false, false, 1, "active"},
		{map[string]any{"action": "controlSession", "command": "pause"}, "broadcastPaused", true, false, 1, "paused"},
		{map[string]any{"action": "controlSession", "command": "resume"}, "broadcastResumed", false, false, 1, "active"},
		{map[string]any{"action": "speakerStateChange", "state": map[string]any{"isMuted": true, "volume": 0.25}}, "speakerStateChanged", false, true, 0.25, "active"},
		{map[string]any{"action": "speakerStateChange", "state": map[string]any{"isMuted": false, "isPaused": true}}, "speakerStateChanged", true, false, 0.25, "paused"},
		{map[string]any{"action": "speakerStateChange", "state": map[string]any{"isPaused": false, "volume": 1}}, "speakerStateChanged", false, false, 1, "active"},
	}
	for i, st := range steps {
		n.Clock.Advance(time.Second) // lastStateChange moves with the clock
		sendJSON(t, sp, st.msg)
		for j, c := range all {
			ev := expect(t, c, st.typ)
			if ev.String("sessionId") != id {
				t.Fatalf("step %d conn %d: %s", i, j, ev.Raw)
			}
			checkBroadcastState(t, ev, st.paused, st.muted, st.volume)
			if got := ev.Map("broadcastState")["lastStateChange"].(float64); int64(got) != n.Clock.Now().UnixMilli() {
				t.Fatalf("step %d: lastStateChange %v, want now %d", i, got, n.Clock.Now().UnixMilli())
			}
		}
		r := getSession(t, n, id)
		if r.ev().String("status") != st.status {
			t.Fatalf("step %d (%v): GET status %s, want %s", i, st.msg, r.ev().String("status"), st.status)
		}
		checkBroadcastState(t, r.ev(), st.paused, st.muted, st.volume)
	}
	// A listener that joins now is told the current state.
	_, j := listener(t, n, id, "de")
	checkBroadcastState(t, j, false, false, 1)
}

func TestSetVolume(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	for _, v := range []float64{0.5, 0, 1} {
		act(t, sp, "setVolume", "volumeLevel", v)
		for _, c := range []*client.Conn{sp, li} {
			ev := expect(t, c, "volumeChanged")
			if ev.String("sessionId") != id || ev.Float("volumeLevel") != v {
				t.Fatalf("volumeChanged = %s, want %v", ev.Raw, v)
			}
			if _, ok := ev.JSON["volumeLevel"].(float64); !ok {
				t.Fatalf("volumeLevel is not a number: %s", ev.Raw)
			}
		}
	}
	act(t, sp, "setVolume", "volumeLevel", 0.5)
	expect(t, sp, "volumeChanged")
	bad := []struct {
		msg   map[string]any
		code  string
		field string
	}{
		{map[string]any{"action": "setVolume", "volumeLevel": 1.5}, "INVALID_PARAMETER", "volumeLevel"},
		{map[string]any{"action": "setVolume", "volumeLevel": -0.1}, "INVALID_PARAMETER", "volumeLevel"},
		{map[string]any{"action": "setVolume", "volumeLevel": "0.5"}, "INVALID_PARAMETER", "volumeLevel"},
		{map[string]any{"action": "setVolume"}, "MISSING_PARAMETER", "volumeLevel"},
		{map[string]any{"action": "speakerStateChange"}, "MISSING_PARAMETER", "state"},
		{map[string]any{"action": "speakerStateChange", "state": map[string]any{"volume": 2}}, "INVALID_PARAMETER", "state.volume"},
		{map[string]any{"action": "controlSession", "command": "stop"}, "INVALID_PARAMETER", "command"},
		{map[string]any{"action": "controlSession"}, "MISSING_PARAMETER", "command"},
	}
	for _, b := range bad {
		sendJSON(t, sp, b.msg)
		ev := expect(t, sp, "error")
		checkErr(t, ev, b.code, 400, map[string]any{"field": b.field})
		if ev.String("sessionId") != id {
			t.Fatalf("error without the connection's sessionId: %s", ev.Raw)
		}
	}
	alive(t, sp)
	// Nothing changed: the volume is still 0.5, and listeners heard of none
	// of the refused changes.
	r := getSession(t, n, id)
	checkBroadcastState(t, r.ev(), false, false, 0.5)
	act(t, sp, "setVolume", "volumeLevel", 0.75)
	if ev := expect(t, li, "volumeChanged"); ev.Float("volumeLevel") != 0.5 {
		t.Fatalf("listener: %s", ev.Raw)
	}
	if ev := expect(t, li, "volumeChanged"); ev.Float("volumeLevel") != 0.75 {
		t.Fatalf("listener: %s", ev.Raw)
	}
}

func TestGetSessionStatus(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	listener(t, n, id, "es")
	listener(t, n, id, "es", "audioEncoding", "base64")
	listener(t, n, id, "fr")
	mover, _ := listener(t, n, id, "de")
	act(t, mover, "changeLanguage", "targetLanguage", "fr")
	expect(t, mover, "languageChanged")
	n.Clock.Advance(75*time.Second + 400*time.Millisecond)
	act(t, sp, "getSessionStatus")
	ev := expectStatus(t, sp, "requested")
	if ev.String("sessionId") != id || ev.Int("listenerCount") != 4 {
		t.Fatalf("sessionStatus = %s", ev.Raw)
	}
	dist := ev.Map("languageDistribution")
	if len(dist) != 2 || dist["es"] != float64(2) || dist["fr"] != float64(2) {
		t.Fatalf("languageDistribution = %v, want es:2 fr:2 and no empty language", dist)
	}
	if d, ok := ev.JSON["sessionDuration"].(float64); !ok || d != 75 {
		t.Fatalf("sessionDuration = %v, want 75 whole seconds", ev.JSON["sessionDuration"])
	}
	checkBroadcastState(t, ev, false, false, 1)
	checkMillis(t, ev, "timestamp")
}

func TestStatusPushes(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	// A new language: pushed at once.
	li1, _ := listener(t, n, id, "es")
	ev := expect(t, sp, "sessionStatus")
	if ev.String("updateReason") != "newLanguage" || ev.Int("listenerCount") != 1 || ev.Map("languageDistribution")["es"] != float64(1) {
		t.Fatalf("first push = %s", ev.Raw)
	}
	// Another listener of es, in the same second: the count push waits for
	// the 1-second gap. A requested status comes first.
	li2, _ := listener(t, n, id, "es")
	act(t, sp, "getSessionStatus")
	if ev := expect(t, sp, "sessionStatus"); ev.String("updateReason") != "requested" || ev.Int("listenerCount") != 2 {
		t.Fatalf("want the requested status before any count push, got %s", ev.Raw)
	}
	n.Clock.Advance(time.Second)
	ev = expect(t, sp, "sessionStatus")
	if ev.String("updateReason") != "listenerCountChange" || ev.Int("listenerCount") != 2 {
		t.Fatalf("deferred count push = %s", ev.Raw)
	}
	// A new language is pushed even inside the gap.
	listener(t, n, id, "fr")
	ev = expect(t, sp, "sessionStatus")
	if ev.String("updateReason") != "newLanguage" || ev.Int("listenerCount") != 3 || ev.Map("languageDistribution")["fr"] != float64(1) {
		t.Fatalf("new-language push = %s", ev.Raw)
	}
	// A listener leaving, outside the gap: pushed as soon as it is gone.
	n.Clock.Advance(2 * time.Second)
	li1.Close()
	ev = expect(t, sp, "sessionStatus")
	if ev.String("updateReason") != "listenerCountChange" || ev.Int("listenerCount") != 2 {
		t.Fatalf("leave push = %s", ev.Raw)
	}
	if d := ev.Map("languageDistribution"); len(d) != 2 || d["es"] != float64(1) || d["fr"] != float64(1) {
		t.Fatalf("distribution after a leave: %s", ev.Raw)
	}
	// Every 30 s a periodic push.
	n.Clock.Advance(30 * time.Second)
	if ev := expectStatus(t, sp, "periodic"); ev.Int("listenerCount") != 2 {
		t.Fatalf("periodic push = %s", ev.Raw)
	}
	// A listener moving to a language nobody had is a new language too.
	act(t, li2, "changeLanguage", "targetLanguage", "ja")
	expect(t, li2, "languageChanged")
	ev = expect(t, sp, "sessionStatus")
	if d := ev.Map("languageDistribution"); ev.String("updateReason") != "newLanguage" || len(d) != 2 || d["ja"] != float64(1) || d["fr"] != float64(1) {
		t.Fatalf("push after a change to a new language = %s", ev.Raw)
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	cases := []struct {
		name, reason string
	}{
		{"with the speaker's text", "Thank you for worshipping with us."},
		{"without reason", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp, id := speaker(t, n, "alice")
			li1, _ := listener(t, n, id, "es")
			li2, _ := listener(t, n, id, "en", "audioEncoding", "base64")
			if tc.reason == "" {
				act(t, sp, "endSession")
			} else {
				act(t, sp, "endSession", "reason", tc.reason)
			}
			for _, c := range []*client.Conn{sp, li1, li2} {
				ev := expect(t, c, "sessionEnded")
				if ev.String("sessionId") != id || ev.String("reason") != "speakerEnded" || ev.String("message") == "" ||
					(tc.reason != "" && ev.String("message") != tc.reason) {
					t.Fatalf("sessionEnded = %s", ev.Raw)
				}
				checkMillis(t, ev, "timestamp")
				expectClose(t, c, 1000)
			}
			r := getSession(t, n, id)
			if r.Status != 200 || r.ev().String("status") != "ended" || r.ev().Int("listenerCount") != 0 || r.ev().Bool("speakerConnected") {
				t.Fatalf("GET after endSession: %d %s", r.Status, r.Raw)
			}
		})
	}
}

func TestChangeLanguage(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	for i, step := range []struct{ action, lang, want string }{
		{"changeLanguage", "fr", "fr"},
		{"switchLanguage", "DE", "de"},
		{"changeLanguage", "en", "en"},
	} {
		act(t, li, step.action, "targetLanguage", step.lang)
		ev := expectBeforeAudio(t, li, "languageChanged")
		if ev.String("sessionId") != id || ev.String("targetLanguage") != step.want || ev.String("sourceLanguage") != "en" {
			t.Fatalf("%s: languageChanged = %s", step.action, ev.Raw)
		}
		// The audio follows the listener, with the source stream's sequence.
		sendBin(t, sp, chunk(i, 40))
		wantAudio(t, li, uint32(i), chunk(i, 40))
	}
	act(t, sp, "getSessionStatus")
	if d := expectStatus(t, sp, "requested").Map("languageDistribution"); len(d) != 1 || d["en"] != float64(1) {
		t.Fatalf("distribution after changes: %v", d)
	}
	for _, b := range []struct {
		msg     map[string]any
		code    string
		details map[string]any
	}{
		{map[string]any{"action": "changeLanguage"}, "MISSING_PARAMETER", map[string]any{"field": "targetLanguage"}},
		{map[string]any{"action": "switchLanguage", "targetLanguage": "english"}, "INVALID_PARAMETER", map[string]any{"field": "targetLanguage"}},
		{map[string]any{"action": "changeLanguage", "targetLanguage": "zz"}, "UNSUPPORTED_LANGUAGE", map[string]any{"field": "targetLanguage", "languageCode": "zz"}},
	} {
		sendJSON(t, li, b.msg)
		checkErr(t, expect(t, li, "error"), b.code, 400, b.details)
	}
	alive(t, li)
}

func TestJoinSessionMessageFromJoinedListener(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	_, id := speaker(t, n, "alice")
	li, first := listener(t, n, id, "es")
	listener(t, n, id, "fr")
	// Same language: sessionJoined again, idempotent.
	act(t, li, "joinSession", "sessionId", id, "targetLanguage", "es")
	again := expect(t, li, "sessionJoined")
	if again.String("role") != "listener" || again.String("sessionId") != id || again.String("targetLanguage") != "es" ||
		again.String("connectionId") != first.String("connectionId") || again.Int("listenerCount") != 2 {
		t.Fatalf("sessionJoined again = %s (first %s)", again.Raw, first.Raw)
	}
	// Another language: a language change.
	act(t, li, "joinSession", "sessionId", id, "targetLanguage", "it")
	ev := expect(t, li, "languageChanged")
	if ev.String("targetLanguage") != "it" || ev.String("sourceLanguage") != "en" || ev.String("sessionId") != id {
		t.Fatalf("languageChanged = %s", ev.Raw)
	}
	r := getSession(t, n, id)
	if d := r.ev().Map("languageDistribution"); r.ev().Int("listenerCount") != 2 || d["it"] != float64(1) || d["fr"] != float64(1) || len(d) != 2 {
		t.Fatalf("GET after joinSession messages: %s", r.Raw)
	}
	// Another session on the same connection is refused.
	_, other := speaker(t, n, "bob")
	act(t, li, "joinSession", "sessionId", other, "targetLanguage", "it")
	checkErr(t, expect(t, li, "error"), "INVALID_PARAMETER", 400, map[string]any{"field": "sessionId"})
	alive(t, li)
}

func TestPlayback(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	other, _ := listener(t, n, id, "es")
	sendBin(t, sp, chunk(0, 64))
	wantAudio(t, li, 0, chunk(0, 64))
	wantAudio(t, other, 0, chunk(0, 64))

	act(t, li, "pausePlayback")
	if ev := expectBeforeAudio(t, li, "playbackPaused"); ev.String("sessionId") != id {
		t.Fatalf("playbackPaused = %s", ev.Raw)
	}
	sendBin(t, sp, chunk(1, 64))
	sendBin(t, sp, chunk(2, 64))
	act(t, sp, "setVolume", "volumeLevel", 0.3) // control messages still arrive
	expect(t, sp, "volumeChanged")
	if ev := expectBeforeAudio(t, li, "volumeChanged"); ev.Float("volumeLevel") != 0.3 {
		t.Fatalf("volumeChanged = %s", ev.Raw)
	}
	// The other listener is not paused.
	wantAudio(t, other, 1, chunk(1, 64))
	wantAudio(t, other, 2, chunk(2, 64))

	act(t, li, "resumePlayback")
	if ev := expectBeforeAudio(t, li, "playbackResumed"); ev.String("sessionId") != id {
		t.Fatalf("playbackResumed = %s", ev.Raw)
	}
	sendBin(t, sp, chunk(3, 64))
	wantAudio(t, li, 3, chunk(3, 64)) // live audio: what was missed is gone
}

func TestRefreshConnectionInPlace(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "token", n.Token("alice")))
	created := expect(t, sp, "sessionCreated")
	id := created.String("sessionId")
	li, joined := listener(t, n, id, "es", "audioEncoding", "base64")

	act(t, sp, "refreshConnection")
	ev := expect(t, sp, "connectionRefreshComplete")
	if ev.String("sessionId") != id || ev.String("role") != "speaker" || ev.String("sourceLanguage") != "en" ||
		ev.String("connectionId") != created.String("connectionId") {
		t.Fatalf("speaker connectionRefreshComplete = %s", ev.Raw)
	}
	act(t, li, "refreshConnection")
	ev = expect(t, li, "connectionRefreshComplete")
	if ev.String("sessionId") != id || ev.String("role") != "listener" || ev.String("targetLanguage") != "es" ||
		ev.String("sourceLanguage") != "en" || ev.String("connectionId") != joined.String("connectionId") {
		t.Fatalf("listener connectionRefreshComplete = %s", ev.Raw)
	}
	// Same socket, same stream.
	sendBin(t, sp, chunk(1, 16))
	wantAudio(t, li, 0, chunk(1, 16))
	// An unjoined connection has nothing to refresh.
	bare := dial(t, n, "")
	act(t, bare, "refreshConnection")
	checkErr(t, expect(t, bare, "error"), "UNAUTHORIZED_ACTION", 403, nil)
	alive(t, bare)
}

func TestRoleMismatches(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	bare := dial(t, n, "")
	type tc struct {
		who    string
		c      *client.Conn
		msg    map[string]any
		binary bool
	}
	audio := b64(chunk(1, 10))
	cases := []tc{
		{"listener", li, map[string]any{"action": "audioChunk", "audioData": audio}, false},
		{"listener", li, map[string]any{"action": "sendAudio", "data": audio}, false},
		{"listener", li, nil, true},
		{"listener", li, map[string]any{"action": "pauseBroadcast"}, false},
		{"listener", li, map[string]any{"action": "resumeBroadcast"}, false},
		{"listener", li, map[string]any{"action": "muteBroadcast"}, false},
		{"listener", li, map[string]any{"action": "unmuteBroadcast"}, false},
		{"listener", li, map[string]any{"action": "setVolume", "volumeLevel": 0.5}, false},
		{"listener", li, map[string]any{"action": "speakerStateChange", "state": map[string]any{"isPaused": true}}, false},
		{"listener", li, map[string]any{"action": "controlSession", "command": "pause"}, false},
		{"listener", li, map[string]any{"action": "getSessionStatus"}, false},
		{"listener", li, map[string]any{"action": "endSession"}, false},
		{"listener", li, map[string]any{"action": "createSession", "sourceLanguage": "en"}, false},
		{"speaker", sp, map[string]any{"action": "changeLanguage", "targetLanguage": "fr"}, false},
		{"speaker", sp, map[string]any{"action": "switchLanguage", "targetLanguage": "fr"}, false},
		{"speaker", sp, map[string]any{"action": "pausePlayback"}, false},
		{"speaker", sp, map[string]any{"action": "resumePlayback"}, false},
		{"speaker", sp, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "fr"}, false},
		{"unjoined", bare, map[string]any{"action": "pauseBroadcast"}, false},
		{"unjoined", bare, map[string]any{"action": "audioChunk", "audioData": audio}, false},
		{"unjoined", bare, nil, true},
		{"unjoined", bare, map[string]any{"action": "changeLanguage", "targetLanguage": "fr"}, false},
		{"unjoined", bare, map[string]any{"action": "pausePlayback"}, false},
	}
	for _, c := range cases {
		if c.binary {
			sendBin(t, c.c, chunk(1, 10))
		} else {
			sendJSON(t, c.c, c.msg)
		}
		ev := expect(t, c.c, "error")
		checkErr(t, ev, "UNAUTHORIZED_ACTION", 403, nil)
		if c.who != "unjoined" && ev.String("sessionId") != id {
			t.Fatalf("%s %v: error without sessionId: %s", c.who, c.msg, ev.Raw)
		}
	}
	// Nothing happened, and nobody was closed.
	for _, c := range []*client.Conn{sp, li, bare} {
		alive(t, c)
	}
	r := getSession(t, n, id)
	if r.ev().String("status") != "active" || r.ev().Int("listenerCount") != 1 || r.ev().Map("languageDistribution")["es"] != float64(1) {
		t.Fatalf("session changed by refused actions: %s", r.Raw)
	}
	checkBroadcastState(t, r.ev(), false, false, 1)
	sendBin(t, sp, chunk(2, 10))
	wantAudio(t, li, 0, chunk(2, 10)) // the listener's chunks went nowhere
}

func TestMalformedMessages(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	bare := dial(t, n, "")
	cases := []struct {
		name    string
		raw     string
		code    string
		details map[string]any
	}{
		{"unknown action", `{"action":"fly"}`, "INVALID_ACTION", nil},
		{"processor action from a client", `{"action":"publishCaption","text":"hi"}`, "UNAUTHORIZED_ACTION", nil},
		{"truncated JSON", `{"action":"heartbeat"`, "INVALID_MESSAGE", nil},
		{"not JSON", `hello`, "INVALID_MESSAGE", nil},
		{"JSON array", `[{"action":"heartbeat"}]`, "INVALID_MESSAGE", nil},
		{"JSON string", `"heartbeat"`, "INVALID_MESSAGE", nil},
		{"empty", ``, "INVALID_MESSAGE", nil},
		{"no action", `{"sessionId":"x"}`, "MISSING_PARAMETER", map[string]any{"field": "action"}},
		{"empty object", `{}`, "MISSING_PARAMETER", map[string]any{"field": "action"}},
		{"empty action", `{"action":""}`, "MISSING_PARAMETER", map[string]any{"field": "action"}},
	}
	for _, c := range []*client.Conn{sp, li, bare} {
		for _, tc := range cases {
			if err := c.SendText(ctx(t), []byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"INVALID_ACTION": 400, "INVALID_MESSAGE": 400, "MISSING_PARAMETER": 400, "UNAUTHORIZED_ACTION": 403}[tc.code]
			checkErr(t, expect(t, c, "error"), tc.code, want, tc.details)
		}
		alive(t, c)
	}
	sendBin(t, sp, chunk(3, 8))
	wantAudio(t, li, 0, chunk(3, 8))
}

func TestJSONSizeLimitIsInclusive(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	c := dial(t, n, "")
	padded := func(size int) []byte {
		b := []byte(`{"action":"heartbeat","pad":"`)
		b = append(b, strings.Repeat("x", size-len(b)-2)...)
		return append(b, '"', '}')
	}
	const limit = 128 * 1024
	if err := c.SendText(ctx(t), padded(limit)); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "heartbeatAck")
	if err := c.SendText(ctx(t), padded(limit+1)); err != nil {
		t.Fatal(err)
	}
	checkErr(t, expect(t, c, "error"), "INVALID_MESSAGE", 400, nil)
	alive(t, c)
}

func TestControlRateLimit(t *testing.T) {
	t.Parallel()
	n := start(t, nil) // 10 control messages a second per connection
	sp, _ := speaker(t, n, "alice")
	for i := 0; i < 14; i++ {
		act(t, sp, "getSessionStatus")
	}
	act(t, sp, "heartbeat")
	evs := collectUntil(t, sp, "heartbeatAck")
	if st, errs := countType(evs, "sessionStatus"), countType(evs, "error"); st != 10 || errs != 1 {
		t.Fatalf("14 control messages at once: %d answers and %d errors, want 10 and 1", st, errs)
	}
	for _, ev := range evs {
		if ev.Type == "error" {
			checkErr(t, ev, "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
		}
	}
	n.Clock.Advance(time.Second)
	act(t, sp, "getSessionStatus")
	expectStatus(t, sp, "requested")
}

// numericFields are fields that must be JSON numbers wherever they appear.
var numericFields = []string{"timestamp", "expiresAt", "listenerCount", "sessionDuration", "volumeLevel", "sequenceNumber",
	"kind", "status", "idleSeconds", "graceSeconds", "refreshBy", "remainingMinutes", "createdAt", "updatedAt", "lastStateChange",
	"maxListeners", "retryAfter", "volume"}

// checkTypes checks the conventions every server message follows: a string
// type, an integer millisecond timestamp, numbers as numbers.
func checkTypes(t *testing.T, ev client.Event) {
	t.Helper()
	if ev.Type == "" {
		t.Fatalf("message without type: %s", ev.Raw)
	}
	checkMillis(t, ev, "timestamp")
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, x := range m {
			// "status" is the error's HTTP-like status; elsewhere a word.
			numeric := slices.Contains(numericFields, k) && (k != "status" || ev.Type == "error" && path == "")
			if _, ok := x.(float64); numeric && !ok {
				t.Fatalf("%s: %s%s is %T, want a number: %s", ev.Type, path, k, x, ev.Raw)
			}
			walk(path+k+".", x)
		}
	}
	walk("", ev.JSON)
}

func TestMessageConventions(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	txt, _ := listener(t, n, id, "fr", "action", "joinSession") // base64
	bare := dial(t, n, "")
	all := []*client.Conn{sp, li, txt, bare}
	for _, c := range all {
		act(t, c, "heartbeat", "timestamp", 12345)
		act(t, c, "fly")
		sendJSON(t, c, map[string]any{"no": "action"})
	}
	for _, a := range []map[string]any{
		{"action": "pauseBroadcast"}, {"action": "resumeBroadcast"}, {"action": "muteBroadcast"}, {"action": "unmuteBroadcast"},
		{"action": "setVolume", "volumeLevel": 0.4}, {"action": "speakerStateChange", "state": map[string]any{"volume": 0.6}},
		{"action": "controlSession", "command": "pause"}, {"action": "controlSession", "command": "resume"},
		{"action": "getSessionStatus"}, {"action": "refreshConnection"}, {"action": "setVolume", "volumeLevel": 9},
	} {
		sendJSON(t, sp, a)
	}
	sendBin(t, sp, chunk(1, 30))
	for _, c := range []*client.Conn{li, txt} {
		act(t, c, "pausePlayback")
		act(t, c, "resumePlayback")
		act(t, c, "refreshConnection")
		act(t, c, "joinSession", "sessionId", id, "targetLanguage", "de")
	}
	types := map[string]bool{}
	// record reads c, checking every message, until one of type typ (or,
	// with typ "", until the connection ends).
	record := func(c *client.Conn, typ string) {
		t.Helper()
		for {
			ev, err := c.Next(ctx(t))
			if err != nil {
				if typ != "" {
					t.Fatalf("waiting for %s: %v", typ, err)
				}
				return
			}
			if ev.Audio != nil {
				continue
			}
			checkTypes(t, ev)
			types[ev.Type] = true
			if typ != "" && ev.Type == typ {
				return
			}
		}
	}
	// Each listener's actions are done before the next chunk, so that it
	// is not dropped by a pausePlayback still in effect; the base64
	// listener's audioData comes from it.
	record(li, "languageChanged")
	record(txt, "languageChanged")
	sendBin(t, sp, chunk(2, 30))
	act(t, li, "switchLanguage", "targetLanguage", "xx")
	n.Clock.Advance(31 * time.Second) // a periodic status, pings
	record(sp, "connectionRefreshComplete")
	act(t, sp, "endSession", "reason", "bye")
	act(t, bare, "heartbeat")
	record(bare, "heartbeatAck")
	bare.Close()
	for _, c := range all[:3] {
		record(c, "")
	}
	for _, typ := range []string{"heartbeatAck", "error", "broadcastPaused", "broadcastResumed", "broadcastMuted", "broadcastUnmuted",
		"volumeChanged", "speakerStateChanged", "sessionStatus", "connectionRefreshComplete", "playbackPaused", "playbackResumed",
		"languageChanged", "audioData", "sessionEnded"} {
		if !types[typ] {
			t.Errorf("scenario produced no %s", typ)
		}
	}
}
