package offline

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/processor/speech"
)

// need skips the test when a program is missing, naming its package (CI
// installs them: .ci/run).
func need(t *testing.T, pkgs map[string]string) {
	t.Helper()
	for bin, pkg := range pkgs {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian: apt-get install %s)", bin, pkg)
		}
	}
}

// say synthesizes English speech with espeak-ng as pcm16 16 kHz.
func say(t *testing.T, text string) []int16 {
	t.Helper()
	need(t, map[string]string{"espeak-ng": "espeak-ng"})
	out, err := exec.Command("espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	if err := speech.DecodeWAV(bytes.NewReader(out), func(p []int16) { pcm = append(pcm, p...) }); err != nil {
		t.Fatal(err)
	}
	return pcm
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPocketsphinxRecognizesSpeechStreamedIn(t *testing.T) {
	need(t, map[string]string{"pocketsphinx_continuous": "pocketsphinx"})
	ps, err := NewPocketsphinx(PocketsphinxConfig{})
	if err != nil {
		t.Skipf("pocketsphinx model missing: %v", err)
	}
	pcm := say(t, "Good morning everyone. Today we read from the book of Acts.")
	ctx := ctxFor(t, time.Minute)
	rec, err := ps.Open(ctx, "en")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for round := range 2 { // the second utterance runs in the spare process
		partials := make(chan string, 100)
		u, err := rec.Begin(func(s string) { partials <- s })
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(pcm); i += speech.FrameSamples {
			if err := u.Write(pcm[i:min(len(pcm), i+speech.FrameSamples)]); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Now()
		text, err := u.End(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// pocketsphinx mishears synthetic speech badly: the path is what
		// is checked, not the words.
		t.Logf("round %d: %q (%d partials), %v after the end of the audio was written", round, text, len(partials), time.Since(t0))
		if text == "" || !strings.HasSuffix(text, ".") || strings.ToUpper(text[:1]) != text[:1] {
			t.Fatalf("text %q: want a non-empty sentence", text)
		}
	}
	if _, err := ps.Open(ctx, "fr"); !errors.Is(err, speech.ErrUnsupported) {
		t.Fatalf("Open(fr) = %v, want ErrUnsupported", err)
	}
}

func TestPocketsphinxEndHonoursItsContext(t *testing.T) {
	need(t, map[string]string{"pocketsphinx_continuous": "pocketsphinx"})
	ps, err := NewPocketsphinx(PocketsphinxConfig{})
	if err != nil {
		t.Skipf("pocketsphinx model missing: %v", err)
	}
	rec, err := ps.Open(ctxFor(t, time.Minute), "en")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	u, err := rec.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = u.Write(make([]int16, speech.FrameSamples))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := u.End(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("End with a cancelled context = %v", err)
	}
}

func TestMissingProgramsAndModelsNameTheirPackage(t *testing.T) {
	if _, err := NewPocketsphinx(PocketsphinxConfig{Binary: "no-such-pocketsphinx"}); err == nil || !strings.Contains(err.Error(), "apt-get install pocketsphinx") {
		t.Errorf("missing binary: %v", err)
	}
	if _, err := NewEspeak(EspeakConfig{Binary: "no-such-espeak"}); err == nil || !strings.Contains(err.Error(), "apt-get install espeak-ng") {
		t.Errorf("missing espeak-ng: %v", err)
	}
	need(t, map[string]string{"pocketsphinx_continuous": "pocketsphinx"})
	if _, err := NewPocketsphinx(PocketsphinxConfig{ModelDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "apt-get install pocketsphinx-en-us") {
		t.Errorf("missing model: %v", err)
	}
}

func TestApertiumTranslatesWithALongLivedPipeline(t *testing.T) {
	need(t, map[string]string{"apertium": "apertium", "apertium-wblank-mode": "apertium"})
	a, err := NewApertium("")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := ctxFor(t, time.Minute)
	if err := a.Prepare(ctx, "en", "es"); err != nil {
		t.Skipf("no eng-spa pair (Debian: apt-get install apertium-eng-spa): %v", err)
	}
	err = a.Prepare(ctx, "en", "ja")
	if !errors.Is(err, speech.ErrUnsupported) || !strings.Contains(err.Error(), "apertium-eng-jpn") {
		t.Fatalf("Prepare(en, ja) = %v", err)
	}
	for i, in := range []string{"Good morning everyone.", "Today we read from the book of Acts.", "The apostles were together."} {
		t0 := time.Now()
		out, err := a.Translate(ctx, in, "en", "es")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%q → %q in %v", in, out, time.Since(t0))
		if i == 0 && !strings.Contains(out, "Buenos días") {
			t.Fatalf("translation %q", out)
		}
	}
	// Text full of the stream format's markup survives as text.
	odd := `a [b] ^c$ @d /e\ <f> {g} ~h #i *j +k |l "m" 50% 3/4`
	out, err := a.Translate(ctx, odd, "en", "es")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%q → %q", odd, out)
	for _, want := range []string{"[b]", "<f>", "{g}", "3/4", "50%"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q lost %q", out, want)
		}
	}
	if strings.Contains(out, `\`) && !strings.Contains(odd, `\`) {
		t.Errorf("escapes left in %q", out)
	}
	// A translation cut short by its deadline kills the pipeline; the
	// next sentence gets a new one.
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-short.Done()
	if _, err := a.Translate(short, "Hello.", "en", "es"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Translate past its deadline = %v", err)
	}
	if out, err := a.Translate(ctx, "Good morning everyone.", "en", "es"); err != nil || !strings.Contains(out, "Buenos días") {
		t.Fatalf("after a timeout: %q, %v", out, err)
	}
}

func TestApertiumWithoutPairs(t *testing.T) {
	need(t, map[string]string{"apertium": "apertium", "apertium-wblank-mode": "apertium"})
	a, err := NewApertium(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Targets()) != 0 {
		t.Fatalf("targets %v in an empty directory", a.Targets())
	}
	if err := a.Prepare(context.Background(), "en", "es"); !errors.Is(err, speech.ErrUnsupported) || !strings.Contains(err.Error(), "apertium-eng-spa") {
		t.Fatalf("Prepare = %v", err)
	}
}

func TestEspeakSpeaks(t *testing.T) {
	need(t, map[string]string{"espeak-ng": "espeak-ng"})
	e, err := NewEspeak(EspeakConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, time.Minute)
	if err := e.Prepare(ctx, "es"); err != nil {
		t.Fatal(err)
	}
	if err := e.Prepare(ctx, "xx"); err == nil || !strings.Contains(err.Error(), `no voice "xx"`) {
		t.Fatalf("Prepare(xx) = %v", err)
	}
	for _, text := range []string{"Hola a todos.", "-v xx [[h@l'oU]] \x01 ☃"} {
		var pcm []int16
		calls := 0
		if err := e.Synthesize(ctx, text, "es", func(p []int16) { pcm = append(pcm, p...); calls++ }); err != nil {
			t.Fatal(err)
		}
		loud := 0
		for _, v := range pcm {
			if v > 1000 || v < -1000 {
				loud++
			}
		}
		t.Logf("%q: %.2f s of speech in %d pieces", text, float64(len(pcm))/processor.SampleRate, calls)
		if len(pcm) < processor.SampleRate/4 || loud == 0 {
			t.Fatalf("%q: %d samples, %d loud", text, len(pcm), loud)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.Synthesize(cancelled, "Hola.", "es", func([]int16) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Synthesize with a cancelled context = %v", err)
	}
}

func FuzzApertiumEscape(f *testing.F) {
	f.Add(`a [b] ^c$ @d /e\ <f> {g} *h`)
	f.Add("\x00\\")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		esc := apertiumEscape(s)
		if strings.ContainsRune(esc, 0) {
			t.Fatalf("NUL in %q", esc)
		}
		want := strings.TrimSpace(strings.ReplaceAll(s, "\x00", ""))
		if got := apertiumUnescape(esc); got != want {
			t.Fatalf("round trip of %q gave %q", want, got)
		}
	})
}
