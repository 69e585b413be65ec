package protocoltest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// attachWithAudio attaches a processor for langs that publishes audio only
// as audio= says ("none": captions only), and returns processorAttached.
func attachWithAudio(t *testing.T, n *testserver.Node, langs, audio string) (*client.Conn, client.Event) {
	t.Helper()
	p := dial(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "engine"), "languages", langs, "audio", audio))
	return p, expect(t, p, "processorAttached")
}

// flags reads translated and captions from sessionJoined or languageChanged.
func flags(ev client.Event) string {
	return fmt.Sprintf("translated=%v captions=%v", ev.Bool("translated"), ev.Bool("captions"))
}

// A processor that sends captions only: the listeners of its language keep
// hearing the source (kind 0, the source's numbers), receive its captions,
// and are told both facts; its audio is refused and reaches nobody.
func TestProcessorCaptionsOnly(t *testing.T) {
	n := start(t, loose)
	p, attached := attachWithAudio(t, n, "es", "none")
	if a, ok := attached.JSON["audio"].([]any); !ok || len(a) != 0 {
		t.Fatalf("processorAttached %v: want audio []", attached.JSON)
	}
	sp, id := speaker(t, n, "alice")
	stream := uint16(expect(t, p, "sessionStarted").Int("streamId"))
	es, esJoined := listener(t, n, id, "es")
	expectLanguages(t, p, id, "es")
	en, enJoined := listener(t, n, id, "en")
	if got := flags(esJoined); got != "translated=false captions=true" {
		t.Fatalf("es sessionJoined: %s", got)
	}
	if got := flags(enJoined); got != "translated=true captions=false" {
		t.Fatalf("en sessionJoined: %s", got)
	}

	for i := range 3 {
		src := bytes.Repeat([]byte{byte(i + 1)}, 320)
		if err := sp.SendBinary(ctx(t), src); err != nil {
			t.Fatal(err)
		}
		if f := nextAudio(t, es); f.Header.Kind != 0 || f.Header.Sequence != uint32(i) || !bytes.Equal(f.Chunk, src) {
			t.Fatalf("es frame %d: %+v", i, f.Header)
		}
		if f := nextAudio(t, p); f.Header.StreamID != stream || f.Header.Sequence != uint32(i) {
			t.Fatalf("processor frame %d: %+v", i, f.Header)
		}
	}
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "Hola", "final": false})
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "Hola a todos", "final": true})
	if c := expect(t, es, "caption"); c.String("text") != "Hola" || c.Bool("final") {
		t.Fatalf("interim caption: %v", c.JSON)
	}
	if c := expect(t, es, "caption"); c.String("text") != "Hola a todos" || !c.Bool("final") || c.Int("sequenceNumber") != 1 {
		t.Fatalf("final caption: %v", c.JSON)
	}
	// Its audio is refused, binary or JSON, and reaches nobody.
	if err := p.SendBinary(ctx(t), translated([]byte("voz"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	if e := expectError(t, p, "FORBIDDEN"); e.JSON["details"].(map[string]any)["languageCode"] != "es" {
		t.Fatalf("error: %v", e.JSON)
	}
	sendJSON(t, p, map[string]any{"action": "publishAudio", "sessionId": id, "targetLanguage": "es", "audioData": b64([]byte("voz"))})
	expectError(t, p, "FORBIDDEN")
	// Captions for a language it was not assigned are refused as ever.
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "fr", "text": "x"})
	expectError(t, p, "FORBIDDEN")
	if err := sp.SendBinary(ctx(t), []byte("next")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != 0 || string(f.Chunk) != "next" {
		t.Fatalf("after the refused audio, es got %+v %q", f.Header, f.Chunk)
	}
	if f := nextAudio(t, en); f.Header.Kind != 0 || f.Header.Sequence != 0 {
		t.Fatalf("en: %+v", f.Header)
	}

	// A language change onto it says the same; the session view too.
	fr, _ := listener(t, n, id, "fr")
	sendJSON(t, fr, map[string]any{"action": "changeLanguage", "targetLanguage": "es"})
	if got := flags(expect(t, fr, "languageChanged")); got != "translated=false captions=true" {
		t.Fatalf("changeLanguage to es: %s", got)
	}
	v := getSession(t, n, id).ev().JSON
	if fmt.Sprint(v["translatedLanguages"], v["audioLanguages"]) != "[es] []" {
		t.Fatalf("view: translatedLanguages %v audioLanguages %v", v["translatedLanguages"], v["audioLanguages"])
	}

	// The processor leaves: plain source, no captions.
	p.CloseNow()
	if got := flags(expect(t, es, "languageChanged")); got != "translated=false captions=false" {
		t.Fatalf("after the processor left: %s", got)
	}
	alive(t, sp)
}

// One processor with audio for Spanish and captions only for French.
func TestProcessorAudioForSomeLanguages(t *testing.T) {
	n := start(t, loose)
	p, attached := attachWithAudio(t, n, "es,fr", "es")
	if fmt.Sprint(attached.JSON["languages"], attached.JSON["audio"]) != "[es fr] [es]" {
		t.Fatalf("processorAttached %v", attached.JSON)
	}
	sp, id := speaker(t, n, "alice")
	stream := uint16(expect(t, p, "sessionStarted").Int("streamId"))
	v := getSession(t, n, id).ev().JSON
	if fmt.Sprint(v["translatedLanguages"], v["audioLanguages"]) != "[es fr] [es]" {
		t.Fatalf("view before joining: %v %v", v["translatedLanguages"], v["audioLanguages"])
	}
	es, esJoined := listener(t, n, id, "es")
	fr, frJoined := listener(t, n, id, "fr")
	expectLanguages(t, p, id, "es")
	expectLanguages(t, p, id, "es", "fr")
	if flags(esJoined) != "translated=true captions=true" || flags(frJoined) != "translated=false captions=true" {
		t.Fatalf("es %s, fr %s", flags(esJoined), flags(frJoined))
	}
	if err := sp.SendBinary(ctx(t), []byte("src")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, fr); f.Header.Kind != 0 || string(f.Chunk) != "src" {
		t.Fatalf("fr: %+v %q", f.Header, f.Chunk)
	}
	nextAudio(t, p)
	if err := p.SendBinary(ctx(t), translated([]byte("hola"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	// es hears only the translation: the source chunk never reached it.
	if f := nextAudio(t, es); f.Header.Kind != 1 || f.Header.Sequence != 0 || string(f.Chunk) != "hola" {
		t.Fatalf("es: %+v %q", f.Header, f.Chunk)
	}
	if err := p.SendBinary(ctx(t), translated([]byte("bonjour"), stream, "fr")); err != nil {
		t.Fatal(err)
	}
	expectError(t, p, "FORBIDDEN")
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "fr", "text": "Bonjour", "final": true})
	if c := expect(t, fr, "caption"); c.String("text") != "Bonjour" {
		t.Fatalf("fr caption: %v", c.JSON)
	}
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "Hola", "final": true})
	if c := expect(t, es, "caption"); c.String("text") != "Hola" {
		t.Fatalf("es caption: %v", c.JSON)
	}
}

// Failover between the two kinds, both ways. The language goes to a
// processor with audio when one serves it; an attached captions-only
// processor keeps a language it serves when one with audio arrives.
func TestProcessorFailoverAudioAndCaptions(t *testing.T) {
	n := start(t, loose)
	voice, _ := attachWithAudio(t, n, "es", "")
	caps, _ := attachWithAudio(t, n, "es", "none")
	sp, id := speaker(t, n, "alice")
	stream := uint16(expect(t, caps, "sessionStarted").Int("streamId"))
	es, joined := listener(t, n, id, "es")
	if flags(joined) != "translated=true captions=true" {
		t.Fatalf("joined: %s", flags(joined))
	}
	expectLanguages(t, voice, id, "es")

	// Audio → captions only.
	voice.CloseNow()
	expectLanguages(t, caps, id, "es")
	if got := flags(expect(t, es, "languageChanged")); got != "translated=false captions=true" {
		t.Fatalf("audio → captions: %s", got)
	}
	if err := sp.SendBinary(ctx(t), []byte("src")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != 0 || string(f.Chunk) != "src" {
		t.Fatalf("after failover to captions: %+v %q", f.Header, f.Chunk)
	}
	sendJSON(t, caps, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "Hola", "final": true})
	if c := expect(t, es, "caption"); c.String("text") != "Hola" {
		t.Fatalf("caption: %v", c.JSON)
	}

	// A processor with audio attaching later does not take es away.
	voice2, _ := attachWithAudio(t, n, "es", "all")
	expect(t, voice2, "sessionStarted")
	if err := voice2.SendBinary(ctx(t), translated([]byte("x"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	expectError(t, voice2, "FORBIDDEN")

	// Captions only → audio.
	caps.CloseNow()
	expectLanguages(t, voice2, id, "es")
	if got := flags(expect(t, es, "languageChanged")); got != "translated=true captions=true" {
		t.Fatalf("captions → audio: %s", got)
	}
	if err := voice2.SendBinary(ctx(t), translated([]byte("hola"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != 1 || string(f.Chunk) != "hola" {
		t.Fatalf("after failover to audio: %+v %q", f.Header, f.Chunk)
	}
	// Nobody left: the plain source.
	voice2.CloseNow()
	if got := flags(expect(t, es, "languageChanged")); got != "translated=false captions=false" {
		t.Fatalf("nobody: %s", got)
	}
}

func TestProcessorAudioParameterErrors(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	tok := processorToken(t, n, "e")
	for _, tc := range []struct {
		langs, audio, code, field string
	}{
		{"", "xx", "UNSUPPORTED_LANGUAGE", "audio"},
		{"", "spanish", "INVALID_PARAMETER", "audio"},
		{"es", "fr", "INVALID_PARAMETER", "audio"},
		{"", "es,none", "INVALID_PARAMETER", "audio"},
		{"es,xx", "none", "UNSUPPORTED_LANGUAGE", "languages"},
	} {
		ev := refusedWith(t, n, q("action", "attachProcessor", "token", tok, "languages", tc.langs, "audio", tc.audio), tc.code, 4400)
		if f := ev.JSON["details"].(map[string]any)["field"]; f != tc.field {
			t.Fatalf("languages=%q audio=%q: field %v, want %s", tc.langs, tc.audio, f, tc.field)
		}
	}
	// The parameters are checked before the token.
	refusedWith(t, n, q("action", "attachProcessor", "token", "not-a-jwt", "audio", "xx"), "UNSUPPORTED_LANGUAGE", 4400)
}
