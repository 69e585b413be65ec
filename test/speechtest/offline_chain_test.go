package speechtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/processor/speech"
	"github.com/pentecost/pentecost/processor/speech/offline"
	"github.com/pentecost/pentecost/server"
)

// The clip: English sentences separated by pauses, spoken by espeak-ng.
var sentences = []string{
	"Good morning and welcome to our service.",
	"Today we read from the book of Acts.",
	"The apostles were all together in one place.",
	"Suddenly a sound like a mighty wind filled the whole house.",
}

const (
	leadIn = 1000 * time.Millisecond // silence before the first sentence
	gap    = 1200 * time.Millisecond // silence between sentences
	tail   = 4 * time.Second         // silence after the last, while the voice plays out
	chunk  = 20 * time.Millisecond
)

func need(t *testing.T) {
	t.Helper()
	for bin, pkg := range map[string]string{
		"espeak-ng": "espeak-ng", "pocketsphinx_continuous": "pocketsphinx",
		"apertium": "apertium", "apertium-wblank-mode": "apertium",
	} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian: apt-get install %s)", bin, pkg)
		}
	}
}

// clip synthesizes the sentences as one pcm16 16 kHz stream, with its
// leading and trailing silence trimmed per sentence, and returns it with
// the sample offset where each sentence's speech ends.
func clip(t *testing.T) ([]int16, []int) {
	t.Helper()
	silence := func(d time.Duration) []int16 { return make([]int16, int(d.Seconds()*processor.SampleRate)) }
	pcm := silence(leadIn)
	var ends []int
	for _, s := range sentences {
		out, err := exec.Command("espeak-ng", "-v", "en-us", "-s", "150", "--stdout", s).Output()
		if err != nil {
			t.Fatalf("espeak-ng: %v", err)
		}
		var sp []int16
		if err := speech.DecodeWAV(bytes.NewReader(out), func(p []int16) { sp = append(sp, p...) }); err != nil {
			t.Fatal(err)
		}
		loud := func(v int16) bool { return v > 300 || v < -300 }
		first, last := slices.IndexFunc(sp, loud), len(sp)-1
		for last > first && !loud(sp[last]) {
			last--
		}
		pcm = append(pcm, sp[first:last+1]...)
		ends = append(ends, len(pcm))
		pcm = append(pcm, silence(gap)...)
	}
	return append(pcm, silence(tail-gap)...), ends
}

// startNode runs a real node on the real clock: the test streams in real
// time, and the node's rate limits must see it so.
func startNode(t *testing.T) (*server.Server, string) {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = testserver.Secret
	cfg.ShutdownGrace = 200 * time.Millisecond
	n := testserver.StartRealTime(t, cfg)
	return n.Srv, n.URL
}

// heard is what a listener received, stamped on arrival.
type heard struct {
	mu       sync.Mutex
	captions []stamped
	frames   []frame
	joined   chan struct{} // closed once the language is served by a processor
	once     sync.Once
	told     bool // sessionJoined or the last languageChanged said captions: true
}

type stamped struct {
	at   time.Time
	text string
}

type frame struct {
	at   time.Time
	loud bool
}

func listen(ctx context.Context, t *testing.T, base, sid, lang string) *heard {
	t.Helper()
	h := &heard{joined: make(chan struct{})}
	l, joined, err := client.StartListener(ctx, client.ListenerOptions{Base: base, Params: client.ListenParams{SessionID: sid, Language: lang}})
	if err != nil {
		t.Fatalf("listen %s: %v", lang, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h.told = joined.Bool("captions")
	if joined.Bool("translated") || lang == "en" {
		h.once.Do(func() { close(h.joined) })
	}
	go func() {
		for {
			ev, err := l.Next(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			switch {
			case ev.Audio != nil:
				loud := false
				for i := 0; i+1 < len(ev.Audio.Chunk); i += 2 {
					if v := int16(binary.LittleEndian.Uint16(ev.Audio.Chunk[i:])); v > 300 || v < -300 {
						loud = true
						break
					}
				}
				h.mu.Lock()
				h.frames = append(h.frames, frame{now, loud})
				h.mu.Unlock()
			case ev.Type == "caption" && ev.Bool("final"):
				h.mu.Lock()
				h.captions = append(h.captions, stamped{now, ev.String("text")})
				h.mu.Unlock()
			case ev.Type == "languageChanged":
				h.mu.Lock()
				h.told = ev.Bool("captions")
				h.mu.Unlock()
				if ev.Bool("translated") {
					h.once.Do(func() { close(h.joined) })
				}
			}
		}
	}()
	return h
}

// TestOfflineChainEndToEnd is the measurement of docs/processors.md: it
// checks that transcript, captions and voice reach real listeners, and
// logs the word error rate and the delays. Run it with -v to see them:
//
//	go test ./test/speechtest -run TestOfflineChainEndToEnd -count=1 -v
func TestOfflineChainEndToEnd(t *testing.T) {
	need(t)
	pcm, ends := clip(t)
	ps, err := offline.NewPocketsphinx(offline.PocketsphinxConfig{})
	if err != nil {
		t.Skip(err)
	}
	ap, err := offline.NewApertium("")
	if err != nil {
		t.Skip(err)
	}
	defer ap.Close()
	if !slices.Contains(ap.Targets(), "es") {
		t.Skip("no Apertium pair into Spanish (Debian: apt-get install apertium-eng-spa)")
	}
	es, err := offline.NewEspeak(offline.EspeakConfig{})
	if err != nil {
		t.Skip(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, base := startNode(t)

	var tmu sync.Mutex
	var timings []speech.Timing
	pipeline, err := speech.New(speech.Options{
		Recognizer: ps, Translator: ap, Synthesizer: es,
		Logf:     func(f string, a ...any) { t.Logf("pipeline: "+f, a...) },
		OnTiming: func(tm speech.Timing) { tmu.Lock(); timings = append(timings, tm); tmu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ptok, err := srv.Auth.Mint("speech-processor", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := processor.New(processor.Options{
		Server: base, Token: processor.StaticToken(ptok), Languages: []string{"en", "es"}, Transcript: true, Translator: pipeline,
		Logf: func(f string, a ...any) { t.Logf("processor: "+f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	engDone := make(chan error, 1)
	engCtx, stopEngine := context.WithCancel(ctx)
	go func() { engDone <- eng.Run(engCtx) }()
	defer func() { stopEngine(); <-engDone }()

	stok, err := srv.Auth.Mint("speaker", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	sp, created, err := client.StartSpeaker(ctx, client.SpeakerOptions{Base: base, Token: stok, Params: client.SpeakParams{SourceLanguage: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sid := created.String("sessionId")
	spanish := listen(ctx, t, base, sid, "es")
	english := listen(ctx, t, base, sid, "en")
	select {
	case <-spanish.joined:
	case <-ctx.Done():
		t.Fatal("the processor never took Spanish")
	}
	// A second room at the same time, where everyone listens in English:
	// nothing to translate, the transcript all the same. It hears the
	// first two sentences.
	sp2, created2, err := client.StartSpeaker(ctx, client.SpeakerOptions{Base: base, Token: stok, Params: client.SpeakParams{SourceLanguage: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp2.Close()
	englishOnly := listen(ctx, t, base, created2.String("sessionId"), "en")
	englishOnlyPCM := pcm[:ends[1]+int(gap.Seconds()*processor.SampleRate)]

	// Stream in real time; a sentence has ended when the chunk holding
	// its last sample has been sent.
	per := int(chunk.Seconds() * processor.SampleRate)
	sentAt := make([]time.Time, 0, len(pcm)/per+1)
	pacer := client.NewPacer(chunk)
	start := time.Now()
	for i := 0; i < len(pcm); i += per {
		if err := pacer.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		sentAt = append(sentAt, time.Now())
		if err := sp.SendAudio(ctx, speech.PCMBytes(pcm[i:min(len(pcm), i+per)])); err != nil {
			t.Fatalf("send audio: %v", err)
		}
		if i < len(englishOnlyPCM) {
			if err := sp2.SendAudio(ctx, speech.PCMBytes(englishOnlyPCM[i:min(len(englishOnlyPCM), i+per)])); err != nil {
				t.Fatalf("send audio to the English-only room: %v", err)
			}
		}
	}
	streamed := time.Since(start)
	spokenEnd := make([]time.Time, len(ends))
	for i, e := range ends {
		spokenEnd[i] = sentAt[(e-1)/per]
	}

	spanish.mu.Lock()
	english.mu.Lock()
	englishOnly.mu.Lock()
	defer spanish.mu.Unlock()
	defer english.mu.Unlock()
	defer englishOnly.mu.Unlock()
	tmu.Lock()
	defer tmu.Unlock()

	// The path: the transcript, translated captions and translated voice
	// all reached their listeners.
	if len(english.captions) == 0 {
		t.Error("the English listener got no transcript")
	}
	if len(englishOnly.captions) == 0 || !englishOnly.told {
		t.Errorf("the English listener alone in a room got %d transcript lines (told captions: %v)", len(englishOnly.captions), englishOnly.told)
	}
	if !slices.ContainsFunc(englishOnly.frames, func(f frame) bool { return f.loud }) {
		t.Error("the English listener alone heard nothing of the speaker")
	}
	if len(spanish.captions) == 0 {
		t.Error("the Spanish listener got no caption")
	}
	loud := slices.ContainsFunc(spanish.frames, func(f frame) bool { return f.loud })
	if !loud {
		t.Error("the Spanish listener heard no voice")
	}
	if t.Failed() {
		return
	}

	var transcript []string
	for _, c := range english.captions {
		transcript = append(transcript, c.text)
	}
	ref := strings.Join(sentences, " ")
	hyp := strings.Join(transcript, " ")
	wer := wordErrorRate(ref, hyp)

	// A caption answers the latest sentence that had ended when it
	// arrived, unless an earlier caption already did (the second half of a
	// sentence the VAD split in two: left out).
	attribute := func(cs []stamped) []int {
		idx := make([]int, len(ends))
		for i := range idx {
			idx[i] = -1
		}
		last := -1
		for k, c := range cs {
			i := len(ends) - 1
			for i >= 0 && spokenEnd[i].After(c.at) {
				i--
			}
			if i > last {
				idx[i], last = k, i
			}
		}
		return idx
	}
	esIdx, enIdx := attribute(spanish.captions), attribute(english.captions)
	// The voice of a sentence starts at the first loud frame, after its
	// caption, that follows a quiet one.
	voiceAfter := func(at time.Time) (time.Time, bool) {
		for i, f := range spanish.frames {
			if f.at.Before(at) || !f.loud || (i > 0 && spanish.frames[i-1].loud) {
				continue
			}
			return f.at, true
		}
		return time.Time{}, false
	}
	// The pipeline's own timings of the sentence: those whose end of
	// speech is the sentence's (the pipeline numbers what its VAD found).
	stage := func(sentence int, lang, name string) string {
		for _, tm := range timings {
			if d := tm.SpeechEnd.Sub(spokenEnd[sentence]); d > -300*time.Millisecond && d < 300*time.Millisecond &&
				tm.Language == lang && tm.Stage == name && tm.Err == nil {
				return fmt.Sprintf("%.2f", tm.Took.Seconds())
			}
		}
		return "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "offline chain (pocketsphinx → Apertium eng-spa → espeak-ng), %d sentences, %.1f s streamed in real time\n", len(sentences), streamed.Seconds())
	fmt.Fprintf(&b, "transcript word error rate: %.2f (%d reference words)\n  said:  %s\n  heard: %s\n", wer, len(words(ref)), ref, hyp)
	fmt.Fprintf(&b, "sentence | transcript | es caption | es voice | pipeline asr / mt / tts (s)\n")
	var capDelays, voiceDelays []time.Duration
	for i := range sentences {
		cell := func(idx []int, cs []stamped) string {
			if idx[i] < 0 {
				return "-"
			}
			return fmt.Sprintf("+%.2f s", cs[idx[i]].at.Sub(spokenEnd[i]).Seconds())
		}
		voice := "-"
		if esIdx[i] >= 0 {
			d := spanish.captions[esIdx[i]].at.Sub(spokenEnd[i])
			capDelays = append(capDelays, d)
			if at, ok := voiceAfter(spanish.captions[esIdx[i]].at); ok {
				vd := at.Sub(spokenEnd[i])
				voiceDelays = append(voiceDelays, vd)
				voice = fmt.Sprintf("+%.2f s", vd.Seconds())
			}
		}
		fmt.Fprintf(&b, "%8d | %10s | %10s | %8s | %s / %s / %s\n", i+1, cell(enIdx, english.captions), cell(esIdx, spanish.captions), voice,
			stage(i, "", speech.StageASR), stage(i, "es", speech.StageMT), stage(i, "es", speech.StageVoice))
	}
	for _, c := range spanish.captions {
		fmt.Fprintf(&b, "  es: %s\n", c.text)
	}
	for _, c := range englishOnly.captions {
		fmt.Fprintf(&b, "  en, in the English-only room: %s\n", c.text)
	}
	fmt.Fprintf(&b, "caption after the sentence ends: median %s, max %s (target ≤ 3 s)\n", median(capDelays), maxOf(capDelays))
	fmt.Fprintf(&b, "voice after the sentence ends:   median %s, max %s (target ≤ 5 s)\n", median(voiceDelays), maxOf(voiceDelays))
	t.Log("\n" + b.String())
}

func median(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%.2f s", s[len(s)/2].Seconds())
}

func maxOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", slices.Max(ds).Seconds())
}
