package processor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/testserver"
)

// CaptionsOnly attaches with audio=none: the tone worker's captions reach
// the Spanish listener over the source audio, the worker is told its audio
// is not wanted, and what it makes anyway is withheld, not sent.
func TestCaptionsOnly(t *testing.T) {
	n := testserver.Start(t, nil)
	var mu sync.Mutex
	audioWanted := map[string]bool{}
	tone := &Tone{}
	tr := TranslatorFunc(func(ctx context.Context, s Stream, out Output) (Worker, error) {
		mu.Lock()
		audioWanted[s.Language] = s.Audio
		mu.Unlock()
		return tone.Start(ctx, s, out)
	})
	e := startEngine(t, n, tr, func(o *Options) { o.CaptionsOnly = true })
	sp, sid := speaker(t, n, "pcm16")
	e.rec.wait(t, 0, "sessionStarted", is(EventSessionStarted, sid, ""))
	es, joined := listener(t, n, sid, "es")
	if joined.Bool("translated") || !joined.Bool("captions") {
		t.Fatalf("sessionJoined: %v, want translated false and captions true", joined.JSON)
	}
	e.rec.wait(t, 0, "worker", is(EventWorkerStarted, sid, "es"))

	src := ramp(640, 3)
	send(t, sp, src)
	var caption string
	heard := false
	for caption == "" || !heard {
		ev, err := es.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Audio != nil && ev.Audio.Header.Kind != 0:
			t.Fatalf("translated audio reached a captions-only language: %+v", ev.Audio.Header)
		case ev.Audio != nil:
			heard = string(ev.Audio.Chunk) == string(src)
		case ev.Type == "caption":
			caption = ev.String("text")
		}
	}
	if caption != "[es] tone 440 Hz" {
		t.Fatalf("caption %q", caption)
	}
	mu.Lock()
	wanted, seen := audioWanted["es"]
	mu.Unlock()
	if !seen || wanted {
		t.Fatalf("Stream.Audio for es: %v (seen %v), want false", wanted, seen)
	}
	// The engine counts a caption after its send returns, which may be
	// after the listener has it: poll.
	st := e.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.Captions == 0 && time.Now().Before(deadline); st = e.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if st.AudioWithheld == 0 || st.AudioChunks != 0 || st.Captions == 0 || st.SendErrors != 0 {
		t.Fatalf("stats %+v: want audio withheld, none sent, captions sent", st)
	}
	if n := e.rec.count(is(EventServerError, "", "")); n != 0 {
		t.Fatalf("%d server errors", n)
	}
}

// AudioLanguages: audio for Spanish, captions only for French.
func TestAudioLanguages(t *testing.T) {
	n := testserver.Start(t, nil)
	e := startEngine(t, n, &Tone{}, func(o *Options) {
		o.Languages = []string{"es", "fr"}
		o.AudioLanguages = []string{"ES"}
	})
	sp, sid := speaker(t, n, "pcm16")
	e.rec.wait(t, 0, "sessionStarted", is(EventSessionStarted, sid, ""))
	es, esJoined := listener(t, n, sid, "es")
	fr, frJoined := listener(t, n, sid, "fr")
	if !esJoined.Bool("translated") || frJoined.Bool("translated") || !frJoined.Bool("captions") {
		t.Fatalf("es %v, fr %v", esJoined.JSON, frJoined.JSON)
	}
	e.rec.wait(t, 0, "languages es, fr", langsAre(e.conn, sid, "es", "fr"))
	e.rec.wait(t, 0, "fr worker", is(EventWorkerStarted, sid, "fr"))
	src := ramp(640, 1)
	send(t, sp, src)
	if f := nextTranslated(t, es, nil); len(f.Chunk) != len(src) {
		t.Fatalf("es: %d bytes", len(f.Chunk))
	}
	for {
		ev, err := fr.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Audio != nil {
			if ev.Audio.Header.Kind != 0 || string(ev.Audio.Chunk) != string(src) {
				t.Fatalf("fr: %+v", ev.Audio.Header)
			}
			break
		}
	}
	expect(t, fr, "caption")
}

func TestAudioOptionsChecked(t *testing.T) {
	base := Options{Server: "127.0.0.1:1", Token: StaticToken("x"), Translator: &Tone{}}
	for name, mutate := range map[string]func(*Options){
		"both":            func(o *Options) { o.CaptionsOnly, o.AudioLanguages = true, []string{"es"} },
		"not a code":      func(o *Options) { o.AudioLanguages = []string{"spanish"} },
		"not among langs": func(o *Options) { o.Languages, o.AudioLanguages = []string{"es"}, []string{"fr"} },
	} {
		o := base
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}
