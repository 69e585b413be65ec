package speech

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/processor"
)

func newPipeline(t *testing.T, o Options) (*Pipeline, *logSink) {
	t.Helper()
	logs := &logSink{}
	if o.Logf == nil {
		o.Logf = logs.logf
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func start(t *testing.T, p *Pipeline, lang string) (processor.Worker, *fakeOutput) {
	t.Helper()
	out := newOutput(lang)
	w, err := p.Start(context.Background(), stream(lang), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, out
}

// feedAll gives every worker every chunk, in order, as the engine does.
func feedAll(t *testing.T, chunks []processor.Chunk, ws ...processor.Worker) {
	t.Helper()
	for _, c := range chunks {
		for _, w := range ws {
			if err := w.Process(c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRecognizesOncePerSessionAndTranslatesPerLanguage(t *testing.T) {
	rec := &fakeRecognizer{}
	p, _ := newPipeline(t, Options{Recognizer: rec, Translator: &fakeMT{}, Synthesizer: &fakeTTS{}})
	es, esOut := start(t, p, "es")
	fr, frOut := start(t, p, "fr")
	voiceReady(t, es, fr)
	var c chunker
	feedAll(t, c.sentences(3), es, fr)

	for _, o := range []*fakeOutput{esOut, frOut} {
		o.waitFor(t, "three captions", func(o *fakeOutput) bool { return len(o.captions) == 3 })
		o.mu.Lock()
		got := slices.Clone(o.captions)
		tr := slices.Clone(o.transcripts)
		o.mu.Unlock()
		for i, g := range got {
			if w := fmt.Sprintf("[%s] sentence %d", o.lang, i); g != w {
				t.Errorf("%s caption %d = %q, want %q", o.lang, i, g, w)
			}
		}
		if !slices.Equal(tr, []string{"sentence 0", "sentence 1", "sentence 2"}) {
			t.Errorf("%s output was given transcripts %q", o.lang, tr)
		}
	}
	opened, _, begun, samples := rec.snapshot()
	if opened != 1 || begun != 3 {
		t.Fatalf("recognizer opened %d times and began %d utterances, want 1 and 3 (once per session, not per language)", opened, begun)
	}
	// Each utterance got its second of speech once (plus pre-roll and the
	// pause that ended it), though two workers fed every chunk.
	for i, n := range samples {
		if n < processor.SampleRate || n > 2*processor.SampleRate {
			t.Errorf("utterance %d got %d samples, want 1-2 s worth: chunks fed twice?", i, n)
		}
	}

	// The voice: each worker publishes exactly as much audio as it was
	// fed, silence while no synthesized speech is ready, and the speech of
	// the three sentences (1000 samples each) once it is.
	spoken := func(o *fakeOutput) int {
		o.mu.Lock()
		defer o.mu.Unlock()
		n := 0
		for _, v := range o.audio {
			if v == 1000 {
				n++
			}
		}
		return n
	}
	fed := len(c.sentences(3)) * FrameSamples
	for deadline := time.Now().Add(wait); spoken(esOut) < 3000 || spoken(frOut) < 3000; {
		if time.Now().After(deadline) {
			t.Fatalf("spoken %d (es) and %d (fr) samples, want 3000", spoken(esOut), spoken(frOut))
		}
		feedAll(t, c.make(false, 20*time.Millisecond), es, fr)
		fed += FrameSamples
	}
	for _, o := range []*fakeOutput{esOut, frOut} {
		o.mu.Lock()
		n := len(o.audio)
		o.mu.Unlock()
		if n != fed {
			t.Errorf("%s: %d samples of audio published for %d fed", o.lang, n, fed)
		}
		if s := spoken(o); s != 3000 {
			t.Errorf("%s: %d samples of synthesized speech, want 3000", o.lang, s)
		}
	}
}

func TestTranscriptsInOrderAndPartialsOnlyForTheCurrentSentence(t *testing.T) {
	gate := make(chan struct{})
	rec := &fakeRecognizer{partials: true, endGate: map[int]chan struct{}{0: gate}}
	p, _ := newPipeline(t, Options{Recognizer: rec, Translator: &fakeMT{}})
	es, out := start(t, p, "es")
	var c chunker
	feedAll(t, c.sentences(2), es)
	// Sentence 1 is being recognized (its partial is out) while sentence
	// 0 is not done yet; then sentence 0 finishes.
	waitUntil(t, "sentence 1 under way", func() bool { _, _, _, s := rec.snapshot(); return len(s) == 2 && s[1] > 0 })
	close(gate)
	out.waitFor(t, "two transcripts", func(o *fakeOutput) bool { return len(o.transcripts) == 2 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if !slices.Equal(out.transcripts, []string{"sentence 0", "sentence 1"}) {
		t.Errorf("transcripts %q, want sentence 0 then 1 although the first took longer to recognize", out.transcripts)
	}
	// Sentence 1's partial came while sentence 0 was still being
	// recognized: publishing it would have put it on screen before
	// sentence 0's final text.
	if !slices.Equal(out.partials, []string{"partial 0"}) {
		t.Errorf("partials %q, want only partial 0", out.partials)
	}
}

func TestAFailingStageStopsNeitherThePipelineNorOtherLanguages(t *testing.T) {
	rec := &fakeRecognizer{endErr: map[int]error{0: errors.New("stand-in ASR failure")}}
	mt := &fakeMT{fail: map[string]bool{"fr": true}}
	tts := &fakeTTS{fail: map[string]bool{"es": true}}
	p, logs := newPipeline(t, Options{Recognizer: rec, Translator: mt, Synthesizer: tts})
	es, esOut := start(t, p, "es")
	fr, frOut := start(t, p, "fr")
	de, deOut := start(t, p, "de")
	var c chunker
	feedAll(t, c.sentences(2), es, fr, de)
	feedAll(t, c.make(false, time.Second), es, fr, de)

	// Sentence 0 failed recognition; sentence 1 went through.
	esOut.waitFor(t, "es caption", func(o *fakeOutput) bool { return len(o.captions) == 1 })
	deOut.waitFor(t, "de caption", func(o *fakeOutput) bool { return len(o.captions) == 1 })
	if esOut.captions[0] != "[es] sentence 1" {
		t.Errorf("es caption %q", esOut.captions[0])
	}
	logs.waitFor(t, "recognition of sentence 0 failed: stand-in ASR failure")
	logs.waitFor(t, "fr translation of sentence 1 failed: stand-in failure")
	logs.waitFor(t, "es speech synthesis of sentence 1 failed")
	frOut.mu.Lock()
	if len(frOut.captions) != 0 {
		t.Errorf("fr captions %q from a failing translator", frOut.captions)
	}
	frOut.mu.Unlock()
	// de was spoken; es (synthesis failing) still got its caption and a
	// silent but continuous stream.
	feedAll(t, c.make(false, time.Second), es, fr, de)
	deOut.waitFor(t, "de voice", func(o *fakeOutput) bool { return slices.Contains(o.audio, 1000) })
	esOut.mu.Lock()
	if slices.ContainsFunc(esOut.audio, func(v int16) bool { return v != 0 }) {
		t.Error("es published speech although its synthesis failed")
	}
	esOut.mu.Unlock()
}

func TestUnsupportedLanguageIsLoggedOnceAndOthersCarryOn(t *testing.T) {
	p, logs := newPipeline(t, Options{Recognizer: &fakeRecognizer{}, Translator: &fakeMT{unsupported: map[string]bool{"fr": true}}})
	es, esOut := start(t, p, "es")
	fr, _ := start(t, p, "fr")
	var c chunker
	feedAll(t, c.sentences(2), es, fr)
	esOut.waitFor(t, "es captions", func(o *fakeOutput) bool { return len(o.captions) == 2 })
	logs.waitFor(t, "no en → fr translation: no pair en-fr: not supported")
	n := 0
	logs.mu.Lock()
	for _, l := range logs.lines {
		if strings.Contains(l, "fr translation") {
			n++
		}
	}
	logs.mu.Unlock()
	if n != 1 {
		t.Errorf("%d log lines about fr, want 1", n)
	}
}

func TestNoRecognizerForTheSourceLanguage(t *testing.T) {
	rec := &fakeRecognizer{openErr: fmt.Errorf("no model for en: %w", ErrUnsupported)}
	p, logs := newPipeline(t, Options{Recognizer: rec, Translator: &fakeMT{}})
	es, out := start(t, p, "es")
	var c chunker
	feedAll(t, c.sentences(1), es)
	logs.waitFor(t, "no speech recognition for source language en: no model for en: not supported")
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.captions) != 0 || len(out.transcripts) != 0 {
		t.Errorf("published %q / %q without a recognizer", out.captions, out.transcripts)
	}
}

func TestDuplicateAndLateChunksAreDropped(t *testing.T) {
	rec := &fakeRecognizer{}
	p, _ := newPipeline(t, Options{Recognizer: rec})
	es, out := start(t, p, "es")
	c := chunker{seq: 10000}
	chunks := c.sentences(1)
	for i, ch := range chunks {
		_ = es.Process(ch)
		_ = es.Process(ch) // duplicate
		if i > 5 {
			_ = es.Process(chunks[i-5]) // late
		}
	}
	out.waitFor(t, "transcript", func(o *fakeOutput) bool { return len(o.transcripts) == 1 })
	_, _, _, samples := rec.snapshot()
	if samples[0] < processor.SampleRate || samples[0] > 2*processor.SampleRate {
		t.Fatalf("utterance got %d samples, want one copy of 1 s plus pre-roll and pause", samples[0])
	}
	// A new numbering (a jump back further than any queue) is accepted.
	c.seq = 0
	_ = es.Process(c.make(true, 20*time.Millisecond)[0])
	feedAll(t, c.sentences(1), es)
	out.waitFor(t, "second transcript", func(o *fakeOutput) bool { return len(o.transcripts) == 2 })
}

func TestCloseStopsTheSessionWithItsLastLanguage(t *testing.T) {
	rec := &fakeRecognizer{}
	mt := &fakeMT{block: make(chan struct{})}
	p, _ := newPipeline(t, Options{Recognizer: rec, Translator: mt, Synthesizer: &fakeTTS{}})
	es, _ := start(t, p, "es")
	fr, _ := start(t, p, "fr")
	var c chunker
	feedAll(t, c.sentences(1), es, fr)
	waitUntil(t, "a sentence recognized", func() bool { _, _, b, _ := rec.snapshot(); return b == 1 })
	// Close returns although the translator is stuck: its call is
	// cancelled.
	if err := es.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed, _, _ := rec.snapshot(); closed != 0 {
		t.Fatal("the session stopped while fr was still served")
	}
	if err := fr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed, _, _ := rec.snapshot(); closed != 1 {
		t.Fatalf("recognition closed %d times after the last language left, want 1", closed)
	}
	// A language that comes later starts a new session.
	es2, out := start(t, p, "es")
	close(mt.block)
	feedAll(t, c.sentences(1), es2)
	out.waitFor(t, "a caption in the new session", func(o *fakeOutput) bool { return len(o.captions) == 1 })
	if opened, _, _, _ := rec.snapshot(); opened != 2 {
		t.Fatalf("recognizer opened %d times, want 2", opened)
	}
}

func TestOpusSessionsGetAnIdleWorker(t *testing.T) {
	rec := &fakeRecognizer{}
	p, _ := newPipeline(t, Options{Recognizer: rec})
	out := newOutput("es")
	s := stream("es")
	s.Format = "opus"
	w, err := p.Start(context.Background(), s, out)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Process(processor.Chunk{Data: []byte{1, 2, 3}})
	_ = w.Close()
	if len(out.logs) != 1 || !strings.Contains(out.logs[0], "pcm16 sessions only") {
		t.Fatalf("logs %q", out.logs)
	}
	if opened, _, _, _ := rec.snapshot(); opened != 0 {
		t.Fatal("opened a recognizer for an opus session")
	}
}

func TestVoiceQueue(t *testing.T) {
	q := voiceQueue{max: 10}
	started := 0
	q.push(0, []int16{1, 2, 3}, func() { started++ })
	q.push(0, []int16{4, 5}, nil)
	dst := make([]int16, 4)
	for _, f := range q.pull(dst) {
		f()
	}
	if !slices.Equal(dst, []int16{1, 2, 3, 4}) || started != 1 {
		t.Fatalf("pulled %v, started %d", dst, started)
	}
	for _, f := range q.pull(dst) {
		f()
	}
	if !slices.Equal(dst, []int16{5, 0, 0, 0}) || started != 1 {
		t.Fatalf("pulled %v (want the rest, then silence), started %d", dst, started)
	}
	// Past the bound, the oldest speech goes.
	q.push(1, []int16{1, 1, 1, 1, 1, 1, 1, 1}, nil)
	if n := q.push(2, []int16{2, 2, 2, 2, 2, 2}, nil); n != 4 {
		t.Fatalf("dropped %d samples, want 4", n)
	}
	dst = make([]int16, 12)
	q.pull(dst)
	if !slices.Equal(dst, []int16{1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0}) {
		t.Fatalf("pulled %v", dst)
	}
}

// voiceReady waits until the workers' synthesizer is prepared: from then
// on each source chunk releases a chunk of voice.
func voiceReady(t *testing.T, ws ...processor.Worker) {
	t.Helper()
	for _, w := range ws {
		l := w.(*language)
		waitUntil(t, l.lang+" voice ready", l.voiceOn.Load)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWithoutATranslatorTheTranscriptAndTheSource(t *testing.T) {
	p, _ := newPipeline(t, Options{Recognizer: &fakeRecognizer{}, Synthesizer: &fakeTTS{}})
	es, out := start(t, p, "es")
	var c chunker
	chunks := c.sentences(1)
	feedAll(t, chunks, es)
	out.waitFor(t, "the transcript", func(o *fakeOutput) bool { return len(o.transcripts) == 1 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.captions) != 0 || len(out.audio) != len(chunks)*FrameSamples {
		t.Fatalf("%d captions, %d samples of audio for %d fed", len(out.captions), len(out.audio), len(chunks)*FrameSamples)
	}
	for i, ch := range chunks {
		if got := PCMBytes(out.audio[i*FrameSamples : (i+1)*FrameSamples]); string(got) != string(ch.Data) {
			t.Fatalf("chunk %d is not the source", i)
		}
	}
}

// A session whose only worker is its source language's (the server gave
// this processor the source language for an audience that speaks it)
// recognizes and publishes the transcript, interim and final, and neither
// translates nor synthesizes. A target language joining later gets its
// captions, while the transcript still comes through the source worker
// only.
func TestSourceLanguageAloneYieldsTheTranscript(t *testing.T) {
	rec := &fakeRecognizer{partials: true}
	mt, tts := &fakeMT{}, &fakeTTS{}
	p, _ := newPipeline(t, Options{Recognizer: rec, Translator: mt, Synthesizer: tts})
	en, enOut := start(t, p, "en")
	var c chunker
	feedAll(t, c.sentences(2), en)
	enOut.waitFor(t, "two transcripts", func(o *fakeOutput) bool { return len(o.transcripts) == 2 })
	enOut.mu.Lock()
	tr, partials, captions, audio := slices.Clone(enOut.transcripts), len(enOut.partials), len(enOut.captions), len(enOut.audio)
	enOut.mu.Unlock()
	if !slices.Equal(tr, []string{"sentence 0", "sentence 1"}) || partials == 0 {
		t.Fatalf("transcripts %q, %d interim: want both sentences, with interim text", tr, partials)
	}
	if captions != 0 || audio != 0 {
		t.Fatalf("the source worker published %d captions and %d samples: want the transcript only", captions, audio)
	}
	if n := mt.calls.Load() + tts.calls.Load(); n != 0 {
		t.Fatalf("%d translator and synthesizer calls for a source-only session", n)
	}
	if opened, _, _, _ := rec.snapshot(); opened != 1 {
		t.Fatalf("recognizer opened %d times", opened)
	}

	es, esOut := start(t, p, "es")
	voiceReady(t, es)
	feedAll(t, c.sentences(1), en, es)
	esOut.waitFor(t, "a Spanish caption", func(o *fakeOutput) bool { return len(o.captions) == 1 })
	enOut.waitFor(t, "the third transcript", func(o *fakeOutput) bool { return len(o.transcripts) == 3 })
	esOut.mu.Lock()
	defer esOut.mu.Unlock()
	if len(esOut.transcripts)+len(esOut.partials) != 0 {
		t.Fatalf("the Spanish worker was given transcripts %q %q: the source worker publishes them", esOut.transcripts, esOut.partials)
	}
	if esOut.captions[0] != "[es] sentence 2" {
		t.Fatalf("es caption %q", esOut.captions[0])
	}
}

// A language served with captions only (Stream.Audio false) is translated
// but never spoken: the synthesizer is not called at all, and no audio is
// published, not even silence.
func TestCaptionsOnlyNeverCallsTheSynthesizer(t *testing.T) {
	tts := &fakeTTS{}
	p, _ := newPipeline(t, Options{Recognizer: &fakeRecognizer{}, Translator: &fakeMT{}, Synthesizer: tts})
	s := stream("fr")
	s.Audio = false
	out := newOutput("fr")
	w, err := p.Start(context.Background(), s, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	var c chunker
	feedAll(t, c.sentences(2), w)
	out.waitFor(t, "two captions", func(o *fakeOutput) bool { return len(o.captions) == 2 })
	feedAll(t, c.make(false, time.Second), w) // time for a voice to play, were there one
	out.mu.Lock()
	defer out.mu.Unlock()
	if n := tts.calls.Load(); n != 0 {
		t.Fatalf("%d synthesizer calls for a captions-only language", n)
	}
	if len(out.audio) != 0 {
		t.Fatalf("%d samples of audio for a captions-only language", len(out.audio))
	}
}
