package protocoltest

import (
	"net/http"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/server"
)

// Codecs of docs/protocol.md 7.4: what every build says and checks. The
// conversions themselves are in codec_opus_test.go (build tags opus).

// noTranscode runs a node as a build without Opus behaves.
func noTranscode(c *server.Config) { c.Transcode = false }

func TestPacketMsOnCreate(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", "opus", "packetMs", "20", "token", n.Token("alice")))
	ev := expect(t, sp, "sessionCreated")
	if ev.Int("packetMs") != 20 || ev.Int("sampleRate") != 16000 || !ev.Has("transcoding") || ev.Bool("transcoding") != opus.Available {
		t.Fatalf("sessionCreated %s", ev.Raw)
	}
	id := ev.String("sessionId")
	if r := httpDo(t, n, "GET", "/sessions/"+id, "", nil); r.ev().Int("packetMs") != 20 {
		t.Fatalf("view %s", r.Body)
	}
	// The default, and every refusal: query, message and HTTP alike.
	_, def := speaker(t, n, "bob")
	if r := httpDo(t, n, "GET", "/sessions/"+def, "", nil); r.ev().Int("packetMs") != pentecost.DefaultPacketMs {
		t.Fatalf("default packetMs: %s", r.Body)
	}
	for _, v := range []string{"30", "0", "20ms", "-20"} {
		ev := refusedWith(t, n, q("action", "createSession", "sourceLanguage", "en", "packetMs", v, "token", n.Token("alice")), "INVALID_PARAMETER", 4400)
		if ev.Map("details")["field"] != "packetMs" {
			t.Fatalf("packetMs=%s: %s", v, ev.Raw)
		}
	}
	c := dial(t, n, q("token", n.Token("alice")))
	for _, body := range []map[string]any{{"action": "createSession", "sourceLanguage": "en", "packetMs": 30}, {"action": "createSession", "sourceLanguage": "en", "packetMs": "40"}, {"action": "createSession", "sourceLanguage": "en", "packetMs": 0}} {
		sendJSON(t, c, body)
		if e := expectError(t, c, "INVALID_PARAMETER"); e.Map("details")["field"] != "packetMs" {
			t.Fatalf("%v: %s", body, e.Raw)
		}
	}
	sendJSON(t, c, map[string]any{"action": "createSession", "sourceLanguage": "en", "packetMs": 20})
	if ev := expect(t, c, "sessionCreated"); ev.Int("packetMs") != 20 {
		t.Fatalf("message packetMs 20: %s", ev.Raw)
	}
	for _, body := range []map[string]any{{"sourceLanguage": "en", "packetMs": 50}, {"sourceLanguage": "en", "packetMs": 20.5}, {"sourceLanguage": "en", "packetMs": 0}} {
		if r := httpDo(t, n, "POST", "/sessions", n.Token("alice"), body); r.Status != http.StatusBadRequest || r.ev().Map("details")["field"] != "packetMs" {
			t.Fatalf("POST %v: %d %s", body, r.Status, r.Body)
		}
	}
	if r := httpDo(t, n, "POST", "/sessions", n.Token("alice"), map[string]any{"sourceLanguage": "en", "packetMs": 40}); r.Status != http.StatusCreated || r.ev().Int("packetMs") != 40 {
		t.Fatalf("POST packetMs 40: %d %s", r.Status, r.Body)
	}
}

// A listener's codec: asked for in the query or the message, said in
// sessionJoined, refused when unknown; a build without Opus sends the
// session's format and says so.
func TestListenerCodecChoice(t *testing.T) {
	t.Parallel()
	for _, transcode := range []bool{true, false} {
		var mutate func(*server.Config)
		if !transcode {
			mutate = noTranscode
		}
		n := start(t, mutate)
		converts := transcode && opus.Available
		_, id := speaker(t, n, "alice") // pcm16
		_, plain := listener(t, n, id, "es")
		_, asked := listener(t, n, id, "es", "codec", "OPUS")
		wantAsked := "pcm16"
		if converts {
			wantAsked = "opus"
		}
		for _, c := range []struct {
			ev   map[string]any
			want string
		}{{plain.JSON, "pcm16"}, {asked.JSON, wantAsked}} {
			if c.ev["codec"] != c.want || c.ev["audioFormat"] != c.want || c.ev["sampleRate"] != 16000.0 || c.ev["packetMs"] != float64(pentecost.DefaultPacketMs) || c.ev["transcoding"] != converts {
				t.Fatalf("transcode %v: sessionJoined %v, want codec %s", transcode, c.ev, c.want)
			}
		}
		m := dial(t, n, "")
		sendJSON(t, m, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "fr", "codec": "opus"})
		if ev := expect(t, m, "sessionJoined"); ev.String("codec") != wantAsked {
			t.Fatalf("joinSession message: %s", ev.Raw)
		}
		sendJSON(t, m, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "fr", "codec": "pcm16"})
		if ev := expect(t, m, "sessionJoined"); ev.String("codec") != wantAsked {
			t.Fatalf("a joined listener's codec changed: %s", ev.Raw)
		}
		ev := refusedWith(t, n, q("sessionId", id, "targetLanguage", "es", "codec", "mp3"), "INVALID_PARAMETER", 4400)
		if ev.Map("details")["field"] != "codec" {
			t.Fatalf("codec=mp3: %s", ev.Raw)
		}
		bad := dial(t, n, "")
		sendJSON(t, bad, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "es", "codec": "aac"})
		if e := expectError(t, bad, "INVALID_PARAMETER"); e.Map("details")["field"] != "codec" {
			t.Fatalf("joinSession codec aac: %s", e.Raw)
		}
	}
}

// A listener refresh keeps the codec of the connection it replaces unless
// it asks for one.
func TestRefreshKeepsCodec(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	_, id := speaker(t, n, "alice")
	old, joined := listener(t, n, id, "es", "codec", "opus")
	_ = old
	want := joined.String("codec")
	r := dial(t, n, q("action", "refreshConnection", "role", "listener", "sessionId", id, "targetLanguage", "es", "previousConnectionId", joined.String("connectionId")))
	if ev := expect(t, r, "connectionRefreshComplete"); ev.String("codec") != want {
		t.Fatalf("refresh without codec: %s, want %s", ev.Raw, want)
	}
	r2 := dial(t, n, q("action", "refreshConnection", "role", "listener", "sessionId", id, "targetLanguage", "es", "previousConnectionId", joined.String("connectionId"), "codec", "pcm16"))
	if ev := expect(t, r2, "connectionRefreshComplete"); ev.String("codec") != "pcm16" {
		t.Fatalf("refresh asking pcm16: %s", ev.Raw)
	}
}

// An Opus session takes only Opus packets from its speaker.
func TestOpusSessionRefusesNonOpus(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", "opus", "token", n.Token("alice")))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	li, _ := listener(t, n, id, "en", "codec", "opus")
	for _, bad := range [][]byte{{1<<3 | 1, 1, 2, 3}, {31<<3 | 3, 0}} { // odd code-1 payload; 0 frames
		sendBin(t, sp, bad)
		if e := expectError(t, sp, "INVALID_PARAMETER"); e.Map("details")["field"] != "audioData" {
			t.Fatalf("%x: %s", bad, e.Raw)
		}
	}
	good := []byte{9 << 3, 0x0b, 0xe4, 0xc1}
	n.Clock.Advance(time.Second)
	sendBin(t, sp, good)
	wantAudio(t, li, 0, good) // the refused chunks took no sequence number
}

// Without conversion (a build without Opus, or one told not to convert),
// every listener gets what the speaker sends, whatever it asked for.
func TestWithoutTranscodingListenersGetTheSessionFormat(t *testing.T) {
	t.Parallel()
	n := start(t, noTranscode)
	for _, format := range []string{"pcm16", "opus"} {
		other := "opus"
		if format == "opus" {
			other = "pcm16"
		}
		sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", format, "token", n.Token("alice")))
		id := expect(t, sp, "sessionCreated").String("sessionId")
		li, joined := listener(t, n, id, "en", "codec", other)
		if joined.String("codec") != format || joined.Bool("transcoding") {
			t.Fatalf("%s session, %s asked: %s", format, other, joined.Raw)
		}
		payload := []byte{9 << 3, 0x0b, 0xe4, 0xc1} // an Opus packet, and 2 pcm16 samples
		n.Clock.Advance(time.Second)
		sendBin(t, sp, payload)
		wantAudio(t, li, 0, payload)
	}
}
