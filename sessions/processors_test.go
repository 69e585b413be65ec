package sessions_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestParseLanguageFilter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		code string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"es,FR", []string{"es", "fr"}, ""},
		{"es,xx", nil, pentecost.ErrUnsupportedLang},
	} {
		m, err := sessions.ParseLanguageFilter(tc.in)
		wantCode(t, tc.in, err, tc.code)
		if len(m) != len(tc.want) {
			t.Fatalf("%q: %v", tc.in, m)
		}
		for _, l := range tc.want {
			if !m[l] {
				t.Fatalf("%q: %v", tc.in, m)
			}
		}
	}
}

// A processor learns the live sessions and is given the languages with
// listeners it serves; its audio goes to those listeners, who hear a
// translation; when it leaves, the next processor takes over, and with
// none the listeners hear the source again.
func TestProcessorAssignmentAndFailover(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	_, es, info := n.listen(rec.ID, "es")
	if info.Translated {
		t.Fatal("no processor yet: Spanish is not translated")
	}

	first := newConn(t)
	p1 := n.AttachProcessor(ctx, first, sessions.ProcessorParams{})
	if a := first.expect(protocol.TypeProcessorAttached); a.str("connectionId") != first.ID() {
		t.Fatalf("%v", a.json)
	}
	started := first.expect(protocol.TypeSessionStarted)
	if started.str("sessionId") != rec.ID || started.str("sourceLanguage") != "en" || started.num("streamId") == 0 {
		t.Fatalf("sessionStarted %v", started.json)
	}
	stream := uint16(started.num("streamId"))
	if m := first.expect(protocol.TypeLanguagesChanged); len(m.json["languages"].([]any)) != 1 {
		t.Fatalf("languagesChanged %v", m.json)
	}
	if m := es.expect(protocol.TypeLanguageChanged); !m.flag("translated") {
		t.Fatalf("languageChanged %v", m.json)
	}
	if n.obs.count("processors") != 1 {
		t.Fatal("processor count")
	}
	second := newConn(t)
	p2 := n.AttachProcessor(ctx, second, sessions.ProcessorParams{Languages: map[string]bool{"es": true, "fr": true}})
	if !p2.Serves("fr") || p2.Serves("de") || strings.Join(p2.Languages(), ",") != "es,fr" || !p1.Serves("de") {
		t.Fatal("filters")
	}

	// The source goes to the processor, framed with its stream ID.
	sp.Audio([]byte("source"))
	if m := first.audio(); m.audio.StreamID != stream || string(m.chunk) != "source" {
		t.Fatalf("tap: %+v %q", m.audio, m.chunk)
	}
	es.none("audio") // Spanish listeners wait for the translation
	n.w.clock.Advance(300 * time.Millisecond)
	if err := p1.PublishAudio("", stream, true, "es", []byte("fuente")); err != nil {
		t.Fatal(err)
	}
	if m := es.audio(); string(m.chunk) != "fuente" || m.audio.Kind != protocol.KindTranslated || m.audio.Sequence != 0 {
		t.Fatalf("translated: %+v %q", m.audio, m.chunk)
	}
	if len(n.obs.lags) != 1 || n.obs.lags[0] != 300*time.Millisecond {
		t.Fatalf("lag %v", n.obs.lags)
	}
	if err := p1.PublishCaption(rec.ID, "es", "hola", true); err != nil {
		t.Fatal(err)
	}
	if m := es.expect(protocol.TypeCaption); m.str("text") != "hola" || !m.flag("final") {
		t.Fatalf("caption %v", m.json)
	}
	// The transcript may come from any processor working on the session.
	if err := p1.PublishCaption(rec.ID, "en", "source text", false); err != nil {
		t.Fatalf("transcript: %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"not assigned", p2.PublishAudio(rec.ID, 0, false, "es", []byte("x")), pentecost.ErrForbidden},
		{"unknown stream", p1.PublishAudio("", 999, true, "es", []byte("x")), pentecost.ErrInvalidParameter},
		{"no session", p1.PublishAudio("", 0, false, "es", []byte("x")), pentecost.ErrMissingParameter},
		{"unknown session", p1.PublishAudio("golden-eagle-427", 0, false, "es", []byte("x")), pentecost.ErrSessionNotFound},
		{"source language", p1.PublishAudio(rec.ID, 0, false, "en", []byte("x")), pentecost.ErrForbidden},
		{"bad language", p1.PublishCaption(rec.ID, "xx", "x", true), pentecost.ErrUnsupportedLang},
		{"long caption", p1.PublishCaption(rec.ID, "es", strings.Repeat("a", 2001), true), pentecost.ErrInvalidParameter},
	} {
		wantCode(t, tc.name, tc.err, tc.code)
	}

	// The first leaves: the second takes Spanish over.
	p1.Leave()
	if m := second.expect(protocol.TypeLanguagesChanged); len(m.json["languages"].([]any)) != 1 {
		t.Fatalf("failover %v", m.json)
	}
	if err := p2.PublishAudio(rec.ID, 0, false, "es", []byte("otra")); err != nil {
		t.Fatalf("after failover: %v", err)
	}
	if m := es.audio(); string(m.chunk) != "otra" || m.audio.Sequence != 1 {
		t.Fatalf("after failover: %+v %q", m.audio, m.chunk)
	}
	// A French listener is served by the second too; German by nobody.
	_, fr, frInfo := n.listen(rec.ID, "fr")
	_, _, deInfo := n.listen(rec.ID, "de")
	if !frInfo.Translated || deInfo.Translated {
		t.Fatalf("fr %+v, de %+v", frInfo, deInfo)
	}
	p2.Leave()
	if m := es.expect(protocol.TypeLanguageChanged); m.flag("translated") {
		t.Fatalf("back to the source: %v", m.json)
	}
	fr.expect(protocol.TypeLanguageChanged)
	sp.Audio([]byte("source again"))
	if m := es.audio(); string(m.chunk) != "source again" {
		t.Fatalf("%q", m.chunk)
	}
	if n.obs.count("processors") != 0 {
		t.Fatal("processor count")
	}
	// A paused broadcast drops translations too.
	p3c := newConn(t)
	p3 := n.AttachProcessor(ctx, p3c, sessions.ProcessorParams{})
	p3c.expect(protocol.TypeLanguagesChanged)
	if err := sp.Control(ctx, &protocol.ClientMessage{Action: protocol.ActPauseBroadcast}); err != nil {
		t.Fatal(err)
	}
	es.expect(protocol.TypeBroadcastPaused)
	if err := p3.PublishAudio(rec.ID, 0, false, "es", []byte("paused")); err != nil {
		t.Fatal(err)
	}
	es.none("audio")
	// The end reaches the processor.
	if err := sp.End(ctx, ""); err != nil {
		t.Fatal(err)
	}
	p3c.expect(protocol.TypeSessionEnded)
}
