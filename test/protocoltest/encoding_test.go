package protocoltest

import (
	"testing"
)

// A refresh keeps the encoding of the connection it replaces; a refresh
// that names none is the earlier deployment's JSON-only client: base64.
func TestRefreshKeepsTheAudioEncoding(t *testing.T) {
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	old, joined := listener(t, n, id, "es", "audioEncoding", "base64")

	inherit := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener",
		"targetLanguage", "es", "previousConnectionId", joined.String("connectionId")))
	expect(t, inherit, "connectionRefreshComplete")
	legacy := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener", "targetLanguage", "fr"))
	expect(t, legacy, "connectionRefreshComplete")
	modern := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener", "targetLanguage", "fr", "audioEncoding", "binary"))
	expect(t, modern, "connectionRefreshComplete")

	sendBin(t, sp, []byte{1, 2, 3})
	if ev := next(t, old); ev.Type != "audioData" {
		t.Fatalf("old: got %q, want base64 audioData", ev.Type)
	}
	if ev := next(t, inherit); ev.Type != "audioData" {
		t.Fatalf("inherited: got %q, want base64 audioData", ev.Type)
	}
	if ev := next(t, legacy); ev.Type != "audioData" {
		t.Fatalf("legacy refresh: got %q, want base64 audioData", ev.Type)
	}
	if f := nextAudio(t, modern); f.Header.Sequence != 0 {
		t.Fatalf("explicit binary: seq %d", f.Header.Sequence)
	}
}

// A joinSession message may ask for base64 audio.
func TestJoinMessageAudioEncoding(t *testing.T) {
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	c := dial(t, n, "")
	sendJSON(t, c, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "es", "audioEncoding": "base64"})
	if ev := expect(t, c, "sessionJoined"); ev.String("audioEncoding") != "base64" {
		t.Fatalf("sessionJoined: %v", ev.JSON)
	}
	sendBin(t, sp, []byte{9})
	if ev := next(t, c); ev.Type != "audioData" {
		t.Fatalf("got %q, want audioData", ev.Type)
	}
	bad := dial(t, n, "")
	sendJSON(t, bad, map[string]any{"action": "joinSession", "sessionId": id, "targetLanguage": "es", "audioEncoding": "mp3"})
	expectError(t, bad, "INVALID_PARAMETER")
}

// Listeners waiting for a speaker that has never attached hear when it does.
func TestWaitingListenersHearTheFirstAttach(t *testing.T) {
	n := start(t, loose)
	id := createHTTP(t, n, "alice", nil)
	li, joined := listener(t, n, id, "es")
	if joined.Bool("speakerConnected") {
		t.Fatal("no speaker yet")
	}
	sp := dial(t, n, q("sessionId", id, "token", n.Token("alice")))
	expect(t, sp, "sessionJoined")
	if ev := expect(t, li, "speakerReconnected"); ev.String("sessionId") != id {
		t.Fatalf("speakerReconnected: %v", ev.JSON)
	}
}

// A processor may refresh its connection in place, and a language in
// capitals is the same language.
func TestProcessorRefreshAndLanguageCase(t *testing.T) {
	n := start(t, loose)
	p := attachProcessor(t, n, "es")
	_, id := speaker(t, n, "alice")
	expect(t, p, "sessionStarted")
	es, _ := listener(t, n, id, "es")
	expectLanguages(t, p, id, "es")
	sendJSON(t, p, map[string]any{"action": "refreshConnection"})
	if ev := expect(t, p, "connectionRefreshComplete"); ev.String("role") != "processor" {
		t.Fatalf("processor refresh: %v", ev.JSON)
	}
	sendJSON(t, p, map[string]any{"action": "publishAudio", "sessionId": id, "targetLanguage": "ES", "audioData": b64([]byte("hola"))})
	if f := nextAudio(t, es); string(f.Chunk) != "hola" || f.Header.Kind != 1 {
		t.Fatalf("upper-case language: %q kind %d", f.Chunk, f.Header.Kind)
	}
}
