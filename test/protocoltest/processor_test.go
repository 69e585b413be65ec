package protocoltest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/protocol"
)

func processorToken(t *testing.T, n *testserver.Node, sub string) string {
	t.Helper()
	tok, err := n.Srv.Auth.Mint(sub, time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func attachProcessor(t *testing.T, n *testserver.Node, langs string) *client.Conn {
	t.Helper()
	p := dial(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "engine"), "languages", langs))
	expect(t, p, "processorAttached")
	return p
}

// expectLanguages reads until languagesChanged for id lists exactly want.
func expectLanguages(t *testing.T, p *client.Conn, id string, want ...string) client.Event {
	t.Helper()
	for {
		ev := expect(t, p, "languagesChanged")
		if ev.String("sessionId") != id {
			continue
		}
		got := []string{}
		for _, v := range ev.JSON["languages"].([]any) {
			got = append(got, v.(string))
		}
		if len(got) == len(want) {
			same := true
			for i := range got {
				same = same && got[i] == want[i]
			}
			if same {
				return ev
			}
		}
		t.Fatalf("languagesChanged %v, want %v", got, want)
	}
}

func translated(b []byte, stream uint16, lang string) []byte {
	f := make([]byte, protocol.ProcessorHeaderSize+len(b))
	protocol.PutProcessorHeader(f, stream, lang)
	copy(f[protocol.ProcessorHeaderSize:], b)
	return f
}

// The whole loop: speaker → processor → listeners in two languages, with
// binary and JSON publishing, captions and the transcript.
func TestProcessorFullLoop(t *testing.T) {
	n := start(t, loose)
	p := attachProcessor(t, n, "es,fr")
	sp, id := speaker(t, n, "alice")
	started := expect(t, p, "sessionStarted")
	stream := uint16(started.Int("streamId"))
	if started.String("sessionId") != id || stream == 0 || started.String("sourceLanguage") != "en" || started.String("audioFormat") != "pcm16" {
		t.Fatalf("sessionStarted: %v", started.JSON)
	}

	es, esJoined := listener(t, n, id, "es")
	expectLanguages(t, p, id, "es")
	fr, frJoined := listener(t, n, id, "fr")
	expectLanguages(t, p, id, "es", "fr")
	en, enJoined := listener(t, n, id, "en")
	de, deJoined := listener(t, n, id, "de")
	for name, ev := range map[string]client.Event{"es": esJoined, "fr": frJoined, "en": enJoined} {
		if !ev.Bool("translated") {
			t.Errorf("%s: sessionJoined.translated = false, want true", name)
		}
	}
	if deJoined.Bool("translated") {
		t.Error("de is served by nobody: translated must be false")
	}

	src := bytes.Repeat([]byte{7}, 320)
	if err := sp.SendBinary(ctx(t), src); err != nil {
		t.Fatal(err)
	}
	// The processor gets the source in the listener format, with its stream.
	pf := nextAudio(t, p)
	if pf.Header.StreamID != stream || pf.Header.Kind != 0 || pf.Header.Sequence != 0 || !bytes.Equal(pf.Chunk, src) {
		t.Fatalf("processor frame: %+v", pf.Header)
	}
	// en (the source) and de (unserved) hear the source, kind 0.
	for _, c := range []*client.Conn{en, de} {
		if f := nextAudio(t, c); f.Header.Kind != 0 || !bytes.Equal(f.Chunk, src) {
			t.Fatalf("source listener frame: %+v", f.Header)
		}
	}
	// es gets the processor's binary translation, fr its JSON one.
	esAudio := []byte("hola-hola")
	if err := p.SendBinary(ctx(t), translated(esAudio, stream, "es")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != 1 || f.Header.Sequence != 0 || !bytes.Equal(f.Chunk, esAudio) {
		t.Fatalf("es frame: %+v %q", f.Header, f.Chunk)
	}
	// The translated chunk answers the first source chunk: one lag sample,
	// recorded after the fan-out (so possibly after the listener has it).
	waitUntil(t, "one processing lag sample for es", func() bool {
		return metricValue(t, n, `pentecost_processing_lag_seconds_count{language="es"}`) == 1
	})
	sendJSON(t, p, map[string]any{"action": "publishAudio", "sessionId": id, "targetLanguage": "fr", "audioData": b64([]byte("bonjour"))})
	if f := nextAudio(t, fr); f.Header.Kind != 1 || string(f.Chunk) != "bonjour" {
		t.Fatalf("fr frame: %+v %q", f.Header, f.Chunk)
	}
	// Captions, and the transcript in the source language.
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "Hola", "final": true})
	c := expect(t, es, "caption")
	if c.String("text") != "Hola" || !c.Bool("final") || c.String("targetLanguage") != "es" || c.Int("sequenceNumber") != 0 {
		t.Fatalf("caption: %v", c.JSON)
	}
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "en", "text": "Hello", "final": false})
	if c := expect(t, en, "caption"); c.String("text") != "Hello" || c.Bool("final") {
		t.Fatalf("transcript: %v", c.JSON)
	}

	// Demand follows listeners: fr leaves, the processor is told.
	fr.CloseNow()
	expectLanguages(t, p, id, "es")
	// The session ends: the processor hears it too.
	sendJSON(t, sp, map[string]any{"action": "endSession"})
	if ev := expect(t, p, "sessionEnded"); ev.String("sessionId") != id || ev.String("reason") != "speakerEnded" {
		t.Fatalf("processor sessionEnded: %v", ev.JSON)
	}
	alive(t, p)
}

func TestProcessorFailover(t *testing.T) {
	n := start(t, loose)
	a := attachProcessor(t, n, "")
	b := attachProcessor(t, n, "es")
	sp, id := speaker(t, n, "alice")
	es, joined := listener(t, n, id, "es")
	if !joined.Bool("translated") {
		t.Fatal("es should be translated")
	}
	expectLanguages(t, a, id, "es") // the longest-attached processor serves it

	a.CloseNow()
	expectLanguages(t, b, id, "es") // the next one takes over at once
	_ = sp.SendBinary(ctx(t), []byte("source"))
	ev, stream := nextAudio(t, b), uint16(0)
	stream = ev.Header.StreamID
	if err := b.SendBinary(ctx(t), translated([]byte("B"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); f.Header.Kind != 1 || string(f.Chunk) != "B" {
		t.Fatalf("after failover: %+v %q", f.Header, f.Chunk)
	}

	b.CloseNow()
	// Nobody serves es now: the listener is told, and hears the source.
	lc := expect(t, es, "languageChanged")
	if lc.Bool("translated") || lc.String("targetLanguage") != "es" {
		t.Fatalf("languageChanged: %v", lc.JSON)
	}
	_ = sp.SendBinary(ctx(t), []byte("src2"))
	if f := nextAudio(t, es); f.Header.Kind != 0 || string(f.Chunk) != "src2" {
		t.Fatalf("fallback frame: %+v %q", f.Header, f.Chunk)
	}
	// A processor attaching later picks the language up again.
	c := attachProcessor(t, n, "es")
	expectLanguages(t, c, id, "es")
	if lc := expect(t, es, "languageChanged"); !lc.Bool("translated") {
		t.Fatalf("languageChanged: %v", lc.JSON)
	}
}

func TestProcessorBadInput(t *testing.T) {
	n := start(t, loose)
	p := attachProcessor(t, n, "es")
	sp, id := speaker(t, n, "alice")
	stream := uint16(expect(t, p, "sessionStarted").Int("streamId"))
	es, _ := listener(t, n, id, "es")
	expectLanguages(t, p, id, "es")

	cases := []struct {
		name  string
		frame []byte
		code  string
	}{
		{"unknown stream", translated([]byte("x"), stream+100, "es"), "INVALID_PARAMETER"},
		{"language not asked for", translated([]byte("x"), stream, "fr"), "FORBIDDEN"},
		{"oversized", translated(make([]byte, 32*1024+1), stream, "es"), "AUDIO_CHUNK_TOO_LARGE"},
		{"short", []byte{1, 1, 0}, "INVALID_MESSAGE"},
		{"kind 0", []byte{1, 0, 0, 1, 'e', 's', 0, 0, 9}, "INVALID_MESSAGE"},
		{"empty chunk", translated(nil, stream, "es"), "INVALID_MESSAGE"},
	}
	for _, tc := range cases {
		if err := p.SendBinary(ctx(t), tc.frame); err != nil {
			t.Fatal(err)
		}
		expectError(t, p, tc.code)
	}
	sendJSON(t, p, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "de", "text": "x"})
	expectError(t, p, "FORBIDDEN")
	sendJSON(t, p, map[string]any{"action": "publishAudio", "sessionId": "no-such-123", "targetLanguage": "es", "audioData": "AAAA"})
	expectError(t, p, "SESSION_NOT_FOUND")
	sendJSON(t, p, map[string]any{"action": "publishAudio", "sessionId": id, "targetLanguage": "es"})
	expectError(t, p, "MISSING_PARAMETER")
	// The processor, the speaker and the listener are all unharmed.
	alive(t, p)
	if err := p.SendBinary(ctx(t), translated([]byte("ok"), stream, "es")); err != nil {
		t.Fatal(err)
	}
	if f := nextAudio(t, es); string(f.Chunk) != "ok" {
		t.Fatalf("after bad input: %q", f.Chunk)
	}
	alive(t, sp)

	// Role checks: a speaker token is no processor token; listeners may not
	// publish.
	refusedWith(t, n, q("action", "attachProcessor", "token", n.Token("alice")), "FORBIDDEN", 4403)
	refusedWith(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "e"), "languages", "es,xx"), "UNSUPPORTED_LANGUAGE", 4400)
	sendJSON(t, es, map[string]any{"action": "publishCaption", "sessionId": id, "targetLanguage": "es", "text": "x"})
	expectError(t, es, "UNAUTHORIZED_ACTION")
}

// TestSessionViewTranslatedLanguages: GET /sessions/{id} lists what the
// attached processors serve (for the listener app's language picker), the
// source excluded, and forgets a processor that leaves.
func TestSessionViewTranslatedLanguages(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	_, id := speaker(t, n, "alice")
	langs := func() []any {
		t.Helper()
		v, _ := getSession(t, n, id).ev().JSON["translatedLanguages"].([]any)
		return v
	}
	if got := langs(); got == nil || len(got) != 0 {
		t.Fatalf("no processor: translatedLanguages %v, want []", got)
	}
	p := attachProcessor(t, n, "fr,es,en")
	if got := fmt.Sprint(langs()); got != "[es fr]" {
		t.Fatalf("processor for en,es,fr on an English session: %s, want [es fr]", got)
	}
	p.CloseNow()
	waitUntil(t, "translatedLanguages empty after the processor left", func() bool { return len(langs()) == 0 })
	attachProcessor(t, n, "")
	if got := langs(); len(got) < 10 {
		t.Fatalf("a processor for every language: %v", got)
	}
	for _, l := range langs() {
		if l == "en" {
			t.Fatal("the source language is listed as translated")
		}
	}
}
