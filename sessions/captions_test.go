package sessions_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

func TestParseProcessorParams(t *testing.T) {
	for _, tc := range []struct {
		langs, audio string
		wantAudio    string // "all" for nil, else the sorted list
		code         string
	}{
		{"", "", "all", ""},
		{"", " ALL ", "all", ""},
		{"", "none", "[]", ""},
		{"es,fr", "None", "[]", ""},
		{"", "fr, ES", "[es fr]", ""},
		{"es,fr", "es", "[es]", ""},
		{"es", "fr", "", pentecost.ErrInvalidParameter},
		{"", "es,none", "", pentecost.ErrInvalidParameter},
		{"", "es,xx", "", pentecost.ErrUnsupportedLang},
		{"", "e", "", pentecost.ErrInvalidParameter},
		{"es,xx", "none", "", pentecost.ErrUnsupportedLang},
	} {
		what := fmt.Sprintf("languages=%q audio=%q", tc.langs, tc.audio)
		p, err := sessions.ParseProcessorParams(tc.langs, tc.audio)
		wantCode(t, what, err, tc.code)
		if err != nil {
			want := "audio"
			if tc.langs == "es,xx" {
				want = "languages"
			}
			if f := pentecost.AsError(err).Details["field"]; f != want {
				t.Fatalf("%s: field %v, want %s", what, f, want)
			}
			continue
		}
		got := "all"
		if p.Audio != nil {
			keys := []string{}
			for _, l := range []string{"de", "en", "es", "fr"} {
				if p.Audio[l] {
					keys = append(keys, l)
				}
			}
			got = fmt.Sprint(keys)
		}
		if got != tc.wantAudio {
			t.Fatalf("%s: audio %s, want %s", what, got, tc.wantAudio)
		}
	}
}

// A processor that attaches with captions only: listeners of its language
// keep the source stream (kind 0, the source's numbers), get its captions,
// and are told both facts; its audio is refused.
func TestCaptionsOnlyProcessor(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	_, es, info := n.listen(rec.ID, "es")
	if info.Translated || info.Captions {
		t.Fatalf("no processor yet: %+v", info)
	}
	sp.Audio([]byte("s0"))
	if m := es.audio(); m.audio.Kind != protocol.KindSource || m.audio.Sequence != 0 {
		t.Fatalf("before: %+v", m.audio)
	}

	pc := newConn(t)
	p := n.AttachProcessor(ctx, pc, sessions.ProcessorParams{Audio: map[string]bool{}})
	if a := pc.expect(protocol.TypeProcessorAttached); fmt.Sprint(a.json["audio"]) != "[]" {
		t.Fatalf("processorAttached %v: want audio []", a.json)
	}
	pc.expect(protocol.TypeLanguagesChanged)
	if m := es.expect(protocol.TypeLanguageChanged); m.flag("translated") || !m.flag("captions") {
		t.Fatalf("languageChanged %v: want translated false, captions true", m.json)
	}
	// The source still reaches Spanish listeners, numbered on.
	sp.Audio([]byte("s1"))
	if m := es.audio(); m.audio.Kind != protocol.KindSource || m.audio.Sequence != 1 || string(m.chunk) != "s1" {
		t.Fatalf("captions-only language: %+v %q", m.audio, m.chunk)
	}
	if m := pc.audio(); string(m.chunk) != "s1" {
		t.Fatalf("the processor hears the source: %q", m.chunk)
	}
	if err := p.PublishCaption(rec.ID, "es", "hola", true); err != nil {
		t.Fatal(err)
	}
	if m := es.expect(protocol.TypeCaption); m.str("text") != "hola" || !m.flag("final") {
		t.Fatalf("caption %v", m.json)
	}
	wantCode(t, "audio from a captions-only processor", p.PublishAudio(rec.ID, 0, false, "es", []byte("x")), pentecost.ErrForbidden)
	es.none("audio")
	wantCode(t, "caption for a language not assigned", p.PublishCaption(rec.ID, "de", "x", true), pentecost.ErrForbidden)

	// Joining, changing language and re-reading say the same.
	_, _, fr := n.listen(rec.ID, "fr")
	_, _, en := n.listen(rec.ID, "en")
	if fr.Translated || !fr.Captions || !en.Translated || en.Captions {
		t.Fatalf("fr %+v, en %+v", fr, en)
	}
	h, _, _ := n.listen(rec.ID, "de")
	m, err := h.ChangeLanguage(ctx, "it")
	if err != nil || m.Translated || !m.Captions {
		t.Fatalf("changeLanguage: %+v %v", m, err)
	}
	if i := h.Info(); i.Translated || !i.Captions {
		t.Fatalf("info %+v", i)
	}

	// Leaving: the language falls back to the plain source.
	p.Leave()
	if m := es.expect(protocol.TypeLanguageChanged); m.flag("translated") || m.flag("captions") {
		t.Fatalf("after leave %v", m.json)
	}
}

// One processor with audio for Spanish and captions only for French.
func TestProcessorAudioForSomeLanguages(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	pc := newConn(t)
	p := n.AttachProcessor(ctx, pc, sessions.ProcessorParams{
		Languages: map[string]bool{"es": true, "fr": true},
		Audio:     map[string]bool{"es": true},
	})
	if a := pc.expect(protocol.TypeProcessorAttached); fmt.Sprint(a.json["audio"]) != "[es]" {
		t.Fatalf("processorAttached %v", a.json)
	}
	_, es, esInfo := n.listen(rec.ID, "es")
	_, fr, frInfo := n.listen(rec.ID, "fr")
	if !esInfo.Translated || !esInfo.Captions || frInfo.Translated || !frInfo.Captions {
		t.Fatalf("es %+v, fr %+v", esInfo, frInfo)
	}
	sp.Audio([]byte("src"))
	if m := fr.audio(); m.audio.Kind != protocol.KindSource || string(m.chunk) != "src" {
		t.Fatalf("fr: %+v %q", m.audio, m.chunk)
	}
	es.none("audio")
	if err := p.PublishAudio(rec.ID, 0, false, "es", []byte("hola")); err != nil {
		t.Fatal(err)
	}
	if m := es.audio(); m.audio.Kind != protocol.KindTranslated || string(m.chunk) != "hola" {
		t.Fatalf("es: %+v %q", m.audio, m.chunk)
	}
	wantCode(t, "fr audio", p.PublishAudio(rec.ID, 0, false, "fr", []byte("x")), pentecost.ErrForbidden)
	if err := p.PublishCaption(rec.ID, "fr", "bonjour", true); err != nil {
		t.Fatal(err)
	}
	if m := fr.expect(protocol.TypeCaption); m.str("text") != "bonjour" {
		t.Fatalf("fr caption %v", m.json)
	}
	fr.none("audio")

	v, err := n.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v.TranslatedLanguages, v.AudioLanguages) != "[es fr] [es]" {
		t.Fatalf("view: translated %v audio %v", v.TranslatedLanguages, v.AudioLanguages)
	}
}

// Failover between a processor with audio and one with captions only, both
// ways; a language served with captions only stays with its processor when
// one with audio attaches, as any assignment does.
func TestFailoverBetweenAudioAndCaptions(t *testing.T) {
	n := newWorld(t, nil).node()
	rec := n.create("alice")
	sp, _ := n.speak(rec.ID, "alice", false)
	esOnly := map[string]bool{"es": true}

	// Captions-only attaches first, audio second: a listener joining gets
	// the one with audio.
	capsC := newConn(t)
	caps := n.AttachProcessor(ctx, capsC, sessions.ProcessorParams{Languages: esOnly, Audio: map[string]bool{}})
	voiceC := newConn(t)
	voice := n.AttachProcessor(ctx, voiceC, sessions.ProcessorParams{Languages: esOnly})
	v, _ := n.Get(ctx, rec.ID)
	if fmt.Sprint(v.TranslatedLanguages, v.AudioLanguages) != "[es] [es]" {
		t.Fatalf("view before any listener: %v %v", v.TranslatedLanguages, v.AudioLanguages)
	}
	_, es, info := n.listen(rec.ID, "es")
	if !info.Translated || !info.Captions {
		t.Fatalf("joined %+v: the processor with audio should serve es", info)
	}
	voiceC.expect(protocol.TypeLanguagesChanged)
	if err := voice.PublishAudio(rec.ID, 0, false, "es", []byte("t0")); err != nil {
		t.Fatal(err)
	}
	if m := es.audio(); m.audio.Kind != protocol.KindTranslated || m.audio.Sequence != 0 {
		t.Fatalf("%+v", m.audio)
	}

	// Audio → captions only: told, back on the source stream.
	voice.Leave()
	if m := es.expect(protocol.TypeLanguageChanged); m.flag("translated") || !m.flag("captions") {
		t.Fatalf("audio → captions: %v", m.json)
	}
	if m := capsC.expect(protocol.TypeLanguagesChanged); fmt.Sprint(m.json["languages"]) != "[es]" {
		t.Fatalf("captions processor: %v", m.json)
	}
	sp.Audio([]byte("s"))
	if m := es.audio(); m.audio.Kind != protocol.KindSource || string(m.chunk) != "s" {
		t.Fatalf("after failover to captions: %+v %q", m.audio, m.chunk)
	}
	if err := caps.PublishCaption(rec.ID, "es", "hola", true); err != nil {
		t.Fatal(err)
	}
	es.expect(protocol.TypeCaption)
	v, _ = n.Get(ctx, rec.ID)
	if fmt.Sprint(v.TranslatedLanguages, v.AudioLanguages) != "[es] []" {
		t.Fatalf("view: %v %v", v.TranslatedLanguages, v.AudioLanguages)
	}

	// A processor with audio attaching does not take es away.
	voice2C := newConn(t)
	voice2 := n.AttachProcessor(ctx, voice2C, sessions.ProcessorParams{Languages: esOnly})
	wantCode(t, "not assigned", voice2.PublishAudio(rec.ID, 0, false, "es", []byte("x")), pentecost.ErrForbidden)
	es.none(protocol.TypeLanguageChanged)

	// Captions only → audio: the listener moves to the translated stream,
	// whose numbers go on from where they were.
	caps.Leave()
	if m := es.expect(protocol.TypeLanguageChanged); !m.flag("translated") || !m.flag("captions") {
		t.Fatalf("captions → audio: %v", m.json)
	}
	if err := voice2.PublishAudio(rec.ID, 0, false, "es", []byte("t1")); err != nil {
		t.Fatal(err)
	}
	if m := es.audio(); m.audio.Kind != protocol.KindTranslated || m.audio.Sequence != 1 {
		t.Fatalf("%+v", m.audio)
	}
	sp.Audio([]byte("not for es"))
	es.none("audio")
}

// Any languages=, audio= and transcript= either parse into a consistent
// filter or are refused with a protocol error naming their field; never a
// panic.
func FuzzParseProcessorParams(f *testing.F) {
	for _, s := range [][3]string{{"", "", ""}, {"es,fr", "es", "true"}, {"", "none", "FALSE"}, {"es", "fr", "yes"}, {" ES ", "All", " True "}, {",,", ",es,", ""}, {"es", "es,none", "1"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, langs, audio, transcript string) {
		if on, err := sessions.ParseTranscript(transcript); err != nil {
			if e := pentecost.AsError(err); e == nil || e.Status() != 400 || e.Details["field"] != "transcript" {
				t.Fatalf("transcript=%q: %v is not a 400 protocol error naming transcript", transcript, err)
			}
		} else if on != (strings.ToLower(strings.TrimSpace(transcript)) == "true") {
			t.Fatalf("transcript=%q read as %v", transcript, on)
		}
		p, err := sessions.ParseProcessorParams(langs, audio)
		if err != nil {
			e := pentecost.AsError(err)
			if e == nil || e.Status() != 400 {
				t.Fatalf("%q %q: %v is not a 400 protocol error", langs, audio, err)
			}
			if f := e.Details["field"]; f != "languages" && f != "audio" {
				t.Fatalf("%q %q: field %v", langs, audio, f)
			}
			return
		}
		for l := range p.Audio {
			if p.Languages != nil && !p.Languages[l] {
				t.Fatalf("%q %q: audio %s outside languages %v", langs, audio, l, p.Languages)
			}
			if _, ok := pentecost.LookupLanguage(l); !ok {
				t.Fatalf("%q %q: unsupported %q accepted", langs, audio, l)
			}
		}
	})
}
