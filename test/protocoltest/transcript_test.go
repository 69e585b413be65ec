package protocoltest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// attachTranscript attaches a transcript processor (transcript=true) for
// langs and returns it with its processorAttached.
func attachTranscript(t *testing.T, n *testserver.Node, langs string, extra ...string) (*client.Conn, client.Event) {
	t.Helper()
	p := dial(t, n, q(append([]string{"action", "attachProcessor", "token", processorToken(t, n, "transcriber"), "languages", langs, "transcript", "true"}, extra...)...))
	return p, expect(t, p, "processorAttached")
}

// idle checks that c received neither a languagesChanged nor audio: a
// heartbeat's answer comes after anything the server queued before it.
func idle(t *testing.T, c *client.Conn) {
	t.Helper()
	act(t, c, "heartbeat")
	for {
		ev := next(t, c)
		switch {
		case ev.Type == "heartbeatAck":
			return
		case ev.Type == "languagesChanged", ev.Audio != nil:
			t.Fatalf("an idle processor got %s %v", ev.Type, ev.JSON)
		}
	}
}

// An English-only congregation: a processor attached without transcript=
// (as every processor before it) never gets the source language, nor the
// audio; a transcript processor does, captions only. It receives the
// speaker's audio though nobody listens in another language, and its
// captions in English reach the English listener, who keeps hearing the
// speaker; its audio for English is refused; the transcript is its alone.
// When it leaves, the listener is told the transcript has stopped.
func TestTranscriptForAnEnglishOnlyAudience(t *testing.T) {
	n := start(t, loose)
	legacy := attachProcessor(t, n, "")
	sp, id := speaker(t, n, "alice")
	expect(t, legacy, "sessionStarted")
	en, joined := listener(t, n, id, "en")
	if got := flags(joined); got != "translated=true captions=false" {
		t.Fatalf("before any transcript processor: %s", got)
	}
	if err := sp.SendBinary(ctx(t), bytes.Repeat([]byte{1}, 320)); err != nil {
		t.Fatal(err)
	}
	nextAudio(t, en)
	idle(t, legacy)
	if v := getSession(t, n, id).ev(); v.Bool("transcript") {
		t.Fatalf("view %s: transcript without a transcript processor", v.Raw)
	}

	tp, attached := attachTranscript(t, n, "en,es")
	if !attached.Bool("transcript") {
		t.Fatalf("processorAttached %s: want transcript true", attached.Raw)
	}
	stream := uint16(expect(t, tp, "sessionStarted").Int("streamId"))
	expectLanguages(t, tp, id, "en")
	if ev := expect(t, en, "languageChanged"); flags(ev) != "translated=true captions=true" || ev.String("targetLanguage") != "en" {
		t.Fatalf("languageChanged %s: want the transcript announced", ev.Raw)
	}
	if v := getSession(t, n, id).ev(); !v.Bool("transcript") || strings.Contains(fmt.Sprint(v.JSON["translatedLanguages"]), "en") {
		t.Fatalf("view %s: want transcript true, the source not among translatedLanguages", v.Raw)
	}
	_, again := listener(t, n, id, "en")
	if got := flags(again); got != "translated=true captions=true" {
		t.Fatalf("a second English listener: %s", got)
	}

	src := bytes.Repeat([]byte{2}, 320)
	if err := sp.SendBinary(ctx(t), src); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, tp); f.Header.StreamID != stream || f.Header.Kind != 0 || !bytes.Equal(f.Chunk, src) {
		t.Fatalf("transcript processor frame %+v", f.Header)
	}
	if f := nextAudio(t, en); f.Header.Kind != 0 || !bytes.Equal(f.Chunk, src) {
		t.Fatalf("English listener frame %+v: want the speaker", f.Header)
	}
	sendJSON(t, tp, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "en", "text": "Good morning", "final": false})
	sendJSON(t, tp, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "en", "text": "Good morning, church.", "final": true})
	if c := expect(t, en, "caption"); c.String("text") != "Good morning" || c.Bool("final") || c.String("targetLanguage") != "en" {
		t.Fatalf("interim transcript %s", c.Raw)
	}
	if c := expect(t, en, "caption"); c.String("text") != "Good morning, church." || !c.Bool("final") {
		t.Fatalf("final transcript %s", c.Raw)
	}
	// No audio for the source language, binary or JSON.
	if err := tp.SendBinary(ctx(t), translated([]byte("voice"), stream, "en")); err != nil {
		t.Fatal(err)
	}
	expectError(t, tp, "FORBIDDEN")
	sendJSON(t, tp, map[string]any{"action": "publishAudio", "sessionId": id, "targetLanguage": "en", "audioData": b64([]byte("voice"))})
	expectError(t, tp, "FORBIDDEN")
	// Another processor's transcript is refused while one is assigned.
	sendJSON(t, legacy, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "en", "text": "twice", "final": true})
	expectError(t, legacy, "FORBIDDEN")
	idle(t, legacy)
	alive(t, en)
	// Not a language pair.
	// The gauge is always exported: absent (-1) means it was renamed, and
	// this check would pass whatever was counted.
	switch v := metricValue(t, n, `pentecost_language_pairs{served="true"}`); {
	case v < 0:
		t.Fatal(`no pentecost_language_pairs{served="true"} in /metrics`)
	case v > 0:
		t.Fatalf("pentecost_language_pairs served = %v: the transcript counted as a pair", v)
	}

	tp.CloseNow()
	if ev := expect(t, en, "languageChanged"); flags(ev) != "translated=true captions=false" {
		t.Fatalf("after the transcript processor left: %s", ev.Raw)
	}
	idle(t, legacy)
	if err := sp.SendBinary(ctx(t), src); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, en); f.Header.Kind != 0 {
		t.Fatalf("English listener frame %+v", f.Header)
	}
}

// transcript= takes true or false; anything else is refused before the
// processor attaches.
func TestTranscriptParameter(t *testing.T) {
	n := start(t, nil)
	ev := refusedWith(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "e"), "transcript", "yes"), "INVALID_PARAMETER", 4400)
	if f, _ := ev.JSON["details"].(map[string]any); f["field"] != "transcript" {
		t.Fatalf("error %s: want field transcript", ev.Raw)
	}
	// The extra pair replaces transcript=true.
	_, attached := attachTranscript(t, n, "", "transcript", "FALSE")
	if attached.Bool("transcript") {
		t.Fatalf("transcript=FALSE: %s", attached.Raw)
	}
	_, off := attachWithAudio(t, n, "es", "")
	if _, present := off.JSON["transcript"]; present {
		t.Fatalf("processorAttached %s: transcript present without the parameter", off.Raw)
	}
}
