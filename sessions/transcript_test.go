package sessions_test

import (
	"fmt"
	"testing"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestParseTranscript(t *testing.T) {
	for in, want := range map[string]bool{"": false, "false": false, " TRUE ": true, "true": true} {
		got, err := sessions.ParseTranscript(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1", "yes", "en"} {
		_, err := sessions.ParseTranscript(in)
		wantCode(t, in, err, pentecost.ErrInvalidParameter)
		if f := pentecost.AsError(err).Details["field"]; f != "transcript" {
			t.Errorf("%q: field %v", in, f)
		}
	}
}

// languagesOf reads a languagesChanged message's list.
func langList(m msg) string { return fmt.Sprint(m.json["languages"]) }

// An English-only audience: a processor without transcript= never gets the
// source language (and so never the audio); a transcript processor does,
// captions only. The listeners keep the speaker, are told the transcript
// is there, get its captions, and no audio from it; the transcript is the
// assigned processor's alone; it fails over to the next transcript
// processor, and back to nothing.
func TestTranscriptProcessorServesTheSourceLanguage(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	_, en, info := n.listen(rec.ID, "en")
	if !info.Translated || info.Captions {
		t.Fatalf("no processor: %+v, want translated (the source itself), no captions", info)
	}

	// A processor without the flag: nothing to do here.
	oldC := newConn(t)
	old := n.AttachProcessor(ctx, oldC, sessions.ProcessorParams{})
	if a := oldC.expect(protocol.TypeProcessorAttached); a.flag("transcript") {
		t.Fatalf("processorAttached %v: transcript without the flag", a.json)
	}
	oldC.expect(protocol.TypeSessionStarted)
	sp.Audio([]byte("s0"))
	en.audio()
	oldC.none(protocol.TypeLanguagesChanged)
	oldC.none("audio") // no tap: nobody listens in a language it serves
	en.none(protocol.TypeLanguageChanged)
	if v, _ := n.Get(ctx, rec.ID); v.Transcript {
		t.Fatal("view: transcript with no transcript processor")
	}
	// One that transcribes but whose filter leaves English out.
	esOnlyC := newConn(t)
	n.AttachProcessor(ctx, esOnlyC, sessions.ProcessorParams{Languages: map[string]bool{"es": true}, Transcript: true})
	esOnlyC.expect(protocol.TypeSessionStarted)
	esOnlyC.none(protocol.TypeLanguagesChanged)

	// A transcript processor (audio for every language it serves, as far
	// as its attach says) is given English, captions only.
	tc := newConn(t)
	tr := n.AttachProcessor(ctx, tc, sessions.ProcessorParams{Transcript: true})
	if a := tc.expect(protocol.TypeProcessorAttached); !a.flag("transcript") {
		t.Fatalf("processorAttached %v: want transcript true", a.json)
	}
	stream := uint16(tc.expect(protocol.TypeSessionStarted).num("streamId"))
	if m := tc.expect(protocol.TypeLanguagesChanged); langList(m) != "[en]" || m.str("sessionId") != rec.ID {
		t.Fatalf("languagesChanged %v: want [en]", m.json)
	}
	if m := en.expect(protocol.TypeLanguageChanged); !m.flag("translated") || !m.flag("captions") || m.str("targetLanguage") != "en" {
		t.Fatalf("languageChanged %v: want translated (the speaker) and captions", m.json)
	}
	if v, _ := n.Get(ctx, rec.ID); !v.Transcript || fmt.Sprint(v.TranslatedLanguages) == "" {
		t.Fatalf("view %+v: want transcript", v)
	}
	_, _, info = n.listen(rec.ID, "en")
	if !info.Translated || !info.Captions {
		t.Fatalf("a second English listener joined with %+v", info)
	}

	// The source goes on to the listeners, and now to the processor.
	sp.Audio([]byte("s1"))
	if m := en.audio(); m.audio.Kind != protocol.KindSource || string(m.chunk) != "s1" {
		t.Fatalf("English listener: %+v %q", m.audio, m.chunk)
	}
	if m := tc.audio(); string(m.chunk) != "s1" {
		t.Fatalf("transcript processor tap: %q", m.chunk)
	}
	oldC.none("audio")

	if err := tr.PublishCaption(rec.ID, "en", "In the beginning", true); err != nil {
		t.Fatal(err)
	}
	if m := en.expect(protocol.TypeCaption); m.str("text") != "In the beginning" || m.str("targetLanguage") != "en" {
		t.Fatalf("transcript %v", m.json)
	}
	wantCode(t, "audio for the source language", tr.PublishAudio(rec.ID, 0, false, "en", []byte("x")), pentecost.ErrForbidden)
	wantCode(t, "binary audio for the source language", tr.PublishAudio("", stream, true, "en", []byte("x")), pentecost.ErrForbidden)
	en.none("audio")
	// Only the assigned processor publishes the transcript, so it shows
	// once, even from a processor that works on the session otherwise.
	n.listen(rec.ID, "es")
	if m := oldC.expect(protocol.TypeLanguagesChanged); langList(m) != "[es]" {
		t.Fatalf("old processor %v: want [es]", m.json)
	}
	wantCode(t, "a second transcript", old.PublishCaption(rec.ID, "en", "twice", true), pentecost.ErrForbidden)
	en.none(protocol.TypeCaption)
	if pairs := n.obs.pairs[rec.ID]; pairs != [2]int{1, 0} {
		t.Fatalf("language pairs %v: want 1 served (es), the source not counted", pairs)
	}

	// Failover to the next transcript processor: listeners see no change.
	t2c := newConn(t)
	t2 := n.AttachProcessor(ctx, t2c, sessions.ProcessorParams{Transcript: true, Audio: map[string]bool{}})
	t2c.expect(protocol.TypeSessionStarted)
	t2c.none(protocol.TypeLanguagesChanged)
	tr.Leave()
	if m := t2c.expect(protocol.TypeLanguagesChanged); langList(m) != "[en]" {
		t.Fatalf("failover %v: want [en]", m.json)
	}
	en.none(protocol.TypeLanguageChanged)
	if err := t2.PublishCaption(rec.ID, "en", "after failover", true); err != nil {
		t.Fatal(err)
	}
	en.expect(protocol.TypeCaption)
	// The last one leaves: no transcript, and the old processor may
	// publish one again, as before transcript processors.
	t2.Leave()
	if m := en.expect(protocol.TypeLanguageChanged); !m.flag("translated") || m.flag("captions") {
		t.Fatalf("languageChanged %v: want translated, no captions", m.json)
	}
	if err := old.PublishCaption(rec.ID, "en", "legacy", true); err != nil {
		t.Fatalf("a transcript with no transcript processor assigned: %v", err)
	}
	if v, _ := n.Get(ctx, rec.ID); v.Transcript {
		t.Fatal("view: transcript after the transcript processors left")
	}
}

// A session whose only listeners speak the source language taps the
// transcript processor: it receives the speaker's audio, in its codec.
func TestSourceListenersAloneTapTheTranscriptProcessor(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	tc := newConn(t)
	n.AttachProcessor(ctx, tc, sessions.ProcessorParams{Transcript: true, Languages: map[string]bool{"en": true, "es": true}})
	tc.expect(protocol.TypeSessionStarted)
	sp.Audio([]byte("before"))
	tc.none("audio") // nobody listens yet
	h, en, info := n.listen(rec.ID, "en")
	if !info.Captions || !info.Translated {
		t.Fatalf("joined %+v: want the transcript announced", info)
	}
	tc.expect(protocol.TypeLanguagesChanged)
	sp.Audio([]byte("after"))
	if m := tc.audio(); string(m.chunk) != "after" || m.audio.Kind != protocol.KindSource {
		t.Fatalf("tap: %+v %q", m.audio, m.chunk)
	}
	en.audio()
	// The last source listener leaves: the language is taken away, the
	// tap goes.
	h.Leave()
	if m := tc.expect(protocol.TypeLanguagesChanged); langList(m) != "[]" {
		t.Fatalf("after the last listener left %v", m.json)
	}
	sp.Audio([]byte("nobody"))
	tc.none("audio")
}

// PATCH of the source language: the new source stays with a processor
// only if it transcribes (captions only), the former source becomes a
// target like any other; every listener ends up told what it gets, and
// the audio routes follow.
func TestSourceChangeWithATranscriptProcessor(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	voiceC := newConn(t)
	voice := n.AttachProcessor(ctx, voiceC, sessions.ProcessorParams{}) // audio for all, no transcript
	tc := newConn(t)
	tr := n.AttachProcessor(ctx, tc, sessions.ProcessorParams{Transcript: true})
	_, en, enInfo := n.listen(rec.ID, "en")
	_, es, esInfo := n.listen(rec.ID, "es")
	if !enInfo.Captions || !esInfo.Translated || !esInfo.Captions {
		t.Fatalf("en %+v, es %+v", enInfo, esInfo)
	}
	if m := tc.expect(protocol.TypeLanguagesChanged); langList(m) != "[en]" {
		t.Fatalf("transcript processor %v", m.json)
	}

	s := func(v string) *string { return &v }
	if _, err := n.Patch(ctx, rec.ID, "alice", sessions.PatchParams{SourceLanguage: s("es")}); err != nil {
		t.Fatal(err)
	}
	last := func(c *fakeConn, typ string) msg {
		t.Helper()
		var got *msg
		for _, m := range c.drain() {
			if m.typ == typ {
				got = &m
			}
		}
		if got == nil {
			t.Fatalf("%s: no %s", c.id, typ)
		}
		return *got
	}
	// Spanish is the source: the processor with audio loses it, the
	// transcript processor takes it, captions only.
	if m := last(es, protocol.TypeLanguageChanged); m.str("sourceLanguage") != "es" || !m.flag("translated") || !m.flag("captions") {
		t.Fatalf("es listener: %v", m.json)
	}
	// English is a target now, kept by its processor, which sends audio
	// for it.
	if m := last(en, protocol.TypeLanguageChanged); m.str("sourceLanguage") != "es" || !m.flag("translated") || !m.flag("captions") {
		t.Fatalf("en listener: %v", m.json)
	}
	if m := last(tc, protocol.TypeLanguagesChanged); langList(m) != "[en es]" {
		t.Fatalf("transcript processor: %v", m.json)
	}
	if m := last(voiceC, protocol.TypeLanguagesChanged); langList(m) != "[]" {
		t.Fatalf("audio processor: %v", m.json)
	}
	sp.Audio([]byte("fuente"))
	if m := es.audio(); m.audio.Kind != protocol.KindSource || string(m.chunk) != "fuente" {
		t.Fatalf("es: %+v %q", m.audio, m.chunk)
	}
	en.none("audio")
	wantCode(t, "es audio", tr.PublishAudio(rec.ID, 0, false, "es", []byte("x")), pentecost.ErrForbidden)
	wantCode(t, "es from the former processor", voice.PublishCaption(rec.ID, "es", "x", true), pentecost.ErrForbidden)
	if err := tr.PublishAudio(rec.ID, 0, false, "en", []byte("english")); err != nil {
		t.Fatal(err)
	}
	if m := en.audio(); m.audio.Kind != protocol.KindTranslated || string(m.chunk) != "english" {
		t.Fatalf("en: %+v %q", m.audio, m.chunk)
	}
}

// A PATCH of the source language on one node reaches the processors of
// another: they are re-announced the session and its assignment is run
// again there, so a transcript processor on B takes the new source
// language, and a processor without the flag loses it.
func TestSourceChangeOnAnotherNodeReassigns(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.node(), w.node()
	rec := a.create("alice")
	a.speak(rec.ID, "alice", false)
	voiceC := newConn(t)
	b.AttachProcessor(ctx, voiceC, sessions.ProcessorParams{})
	tc := newConn(t)
	b.AttachProcessor(ctx, tc, sessions.ProcessorParams{Transcript: true})
	_, es, _ := b.listen(rec.ID, "es")
	if m := voiceC.expect(protocol.TypeLanguagesChanged); langList(m) != "[es]" {
		t.Fatalf("before: %v", m.json)
	}
	s := func(v string) *string { return &v }
	if _, err := a.Patch(ctx, rec.ID, "alice", sessions.PatchParams{SourceLanguage: s("es")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakeConn{voiceC, tc} {
		m := c.expect(protocol.TypeSessionStarted) // the first was en's
		for m.str("sourceLanguage") != "es" {
			m = c.expect(protocol.TypeSessionStarted)
		}
	}
	if m := voiceC.expect(protocol.TypeLanguagesChanged); langList(m) != "[]" {
		t.Fatalf("the processor without the flag: %v", m.json)
	}
	if m := tc.expect(protocol.TypeLanguagesChanged); langList(m) != "[es]" {
		t.Fatalf("the transcript processor: %v", m.json)
	}
	if m := es.expect(protocol.TypeLanguageChanged); m.str("sourceLanguage") != "es" || !m.flag("translated") || !m.flag("captions") {
		t.Fatalf("B's listener: %v", m.json)
	}
}
