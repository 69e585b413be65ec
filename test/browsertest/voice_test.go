package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pentecost/pentecost/processor"
)

// sentences is a translation engine for the tests that makes text only:
// every tenth source chunk (400 ms of 40 ms chunks) ends a numbered
// sentence, "Frase 7.", after an interim "Frase 7…" at the fifth. Run with
// CaptionsOnly, it is what a speech pipeline without a synthesizer
// publishes. word replaces "Frase".
type sentences struct {
	word string
	n    atomic.Int64
}

func (s *sentences) Start(_ context.Context, _ processor.Stream, out processor.Output) (processor.Worker, error) {
	word := s.word
	if word == "" {
		word = "Frase"
	}
	k := 0
	return processor.WorkerFunc(func(processor.Chunk) error {
		k++
		switch k % 10 {
		case 5:
			out.Caption(fmt.Sprintf("%s %d…", word, s.n.Load()+1), false)
		case 0:
			out.Caption(fmt.Sprintf("%s %d.", word, s.n.Add(1)), true)
		}
		return nil
	}), nil
}

// captionsOnlyProcessor attaches the reference processor with
// CaptionsOnly for langs, captioning with tr; stop detaches it.
func captionsOnlyProcessor(t *testing.T, n *node, tr processor.Translator, langs ...string) (stop func()) {
	t.Helper()
	return runProcessor(t, n, processor.Options{Languages: langs, CaptionsOnly: true, Translator: tr})
}

// speechRecorder records, before the app loads, what the page asks of
// speechSynthesis (window.__speech: spoken, cancels, pauses, resumes) and
// passes every call on to the browser's real engine.
const speechRecorder = `(() => {
  const rec = window.__speech = { spoken: [], cancels: 0, pauses: 0, resumes: 0, fake: false };
  const s = window.speechSynthesis;
  if (!s) return;
  const speak = s.speak.bind(s), cancel = s.cancel.bind(s), pause = s.pause.bind(s), resume = s.resume.bind(s);
  s.speak = (u) => { rec.spoken.push({ text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : '', rate: u.rate }); speak(u); };
  s.cancel = () => { rec.cancels++; cancel(); };
  s.pause = () => { rec.pauses++; pause(); };
  s.resume = () => { rec.resumes++; resume(); };
})();`

// fakeSpeech replaces speechSynthesis, before the app loads, with a stand-in
// engine: voices (JSON) appear 300 ms after load with a voiceschanged
// event, as in Chromium; an utterance "speaks" for window.__speechMs
// (150 ms unless a test changes it), firing start and end. It records like
// speechRecorder.
func fakeSpeech(voices string) string {
	return `(() => {
  const rec = window.__speech = { spoken: [], cancels: 0, pauses: 0, resumes: 0, fake: true };
  window.__speechMs = 150;
  class Utterance extends EventTarget {
    constructor(text = '') {
      super();
      Object.assign(this, { text, lang: '', voice: null, rate: 1, pitch: 1, volume: 1, onstart: null, onend: null, onerror: null });
    }
  }
  const fire = (u, type) => {
    const e = new Event(type);
    if (typeof u['on' + type] === 'function') u['on' + type](e);
    u.dispatchEvent(e);
  };
  let voices = [];
  let queue = [];
  let current = null;
  let timer = 0;
  class Synth extends EventTarget {
    constructor() { super(); this.paused = false; this.onvoiceschanged = null; }
    get speaking() { return current !== null; }
    get pending() { return queue.length > 0; }
    getVoices() { return voices.slice(); }
    speak(u) {
      rec.spoken.push({ text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : '', rate: u.rate });
      queue.push(u);
      next();
    }
    cancel() {
      rec.cancels++;
      clearTimeout(timer);
      const all = current ? [current, ...queue] : queue;
      current = null;
      queue = [];
      for (const u of all) fire(u, 'error');
    }
    pause() { rec.pauses++; this.paused = true; clearTimeout(timer); }
    resume() { rec.resumes++; this.paused = false; if (current) finishLater(current); else next(); }
  }
  const synth = new Synth();
  const finishLater = (u) => {
    timer = setTimeout(() => {
      if (current !== u) return;
      current = null;
      fire(u, 'end');
      next();
    }, u.text ? window.__speechMs : 0);
  };
  const next = () => {
    if (current || synth.paused || queue.length === 0) return;
    current = queue.shift();
    fire(current, 'start');
    finishLater(current);
  };
  Object.defineProperty(window, 'speechSynthesis', { value: synth, configurable: true });
  window.SpeechSynthesisUtterance = Utterance;
  setTimeout(() => {
    voices = ` + voices + `.map((v) => Object.freeze({ voiceURI: v.name, localService: true, default: false, ...v }));
    const e = new Event('voiceschanged');
    if (typeof synth.onvoiceschanged === 'function') synth.onvoiceschanged(e);
    synth.dispatchEvent(e);
  }, 300);
})();`
}

// injectScript runs src in the tab before any page script, on every load.
func injectScript(src string) func(*page) {
	return func(p *page) {
		p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src})
			return err
		}))
	}
}

type utterance struct {
	Text  string  `json:"text"`
	Lang  string  `json:"lang"`
	Voice string  `json:"voice"`
	Rate  float64 `json:"rate"`
}

type speechLog struct {
	Spoken  []utterance `json:"spoken"`
	Cancels int         `json:"cancels"`
	Pauses  int         `json:"pauses"`
	Resumes int         `json:"resumes"`
	Fake    bool        `json:"fake"`
}

// said returns what the page asked the engine to say, without the empty
// utterance that unlocks speech on iOS.
func said(p *page) speechLog {
	p.t.Helper()
	raw := eval[json.RawMessage](p, "window.__speech || {}")
	var l speechLog
	if err := json.Unmarshal(raw, &l); err != nil {
		p.t.Fatalf("%s: window.__speech: %v", p.name, err)
	}
	out := l.Spoken[:0]
	for _, u := range l.Spoken {
		if u.Text != "" {
			out = append(out, u)
		}
	}
	l.Spoken = out
	return l
}

var sentenceNum = regexp.MustCompile(`^Frase (\d+)\.$`)

// captionLines returns the final lines of the captions panel.
func captionLines(p *page) []string {
	return eval[[]string](p, `[...document.querySelectorAll('#caption-log p')].map((l) => l.textContent)`)
}

func chooseMode(p *page, mode string) {
	p.t.Helper()
	p.click("mode-" + mode)
	p.waitStats("mode "+mode+" chosen", 5*time.Second, func(s stats) bool { return s.str("listenModeWanted") == mode })
}

// TestBrowserSyntheticVoice: a processor serving Spanish with captions only
// (the reference engine with CaptionsOnly). A Spanish listener keeps
// hearing the original, sees the Spanish captions and is told so (picker,
// badge); choosing the phone's voice hands each final caption, and only
// finals, to speechSynthesis.speak in order with lang es; when the voice
// falls behind it drops old captions and stays near live; muting cancels
// it, pausing pauses it; the fallback to the original (the processor
// leaves) cancels it; "captions only" stops the audio and keeps the
// captions.
//
// The engine here is a stand-in injected before the app loads (fakeSpeech,
// with one Spanish and one English voice): headless Chromium on this
// machine has no voices at all (TestBrowserVoiceUnavailable checks that
// real state; TestBrowserWebKitVoice speaks with a real engine). The
// listener is a phone on the room's Wi-Fi: plain HTTP, where speech
// synthesis works as on a secure origin.
func TestBrowserSyntheticVoice(t *testing.T) {
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")
	tr := &sentences{}
	stop := captionsOnlyProcessor(t, n, tr, "es")

	// A phone on the room's Wi-Fi: plain HTTP, not a secure context.
	es := listenerAt(t, b, roomURL(n), "listener-es", id, "es", asPhone,
		injectScript(fakeSpeech(`[{name: 'Prueba Español', lang: 'es-ES'}, {name: 'Test English', lang: 'en-US'}]`)))
	if eval[bool](es, "window.isSecureContext") {
		t.Fatal("the listener is on a secure context; the room's phones are not")
	}
	// Captions only for Spanish: the original audio plays, the captions come,
	// and the app says both.
	waitPlaying(es, stats{}, 15*time.Second)
	s := es.waitStats("Spanish captions over the original", 15*time.Second, func(s stats) bool {
		return s["captionsServed"] == true && s["untranslated"] == true && s.num("captionLines") >= 2 && s["voiceOffered"] == true
	})
	if s.num("lastKind") != 0 {
		t.Errorf("a captions-only language receives kind %v frames, want the source (0)", s["lastKind"])
	}
	if got := es.text("mode-badge"); got != "Audio original · subtítulos en español" {
		t.Errorf("mode badge %q", got)
	}
	if !eval[bool](es, "document.getElementById('untranslated').hidden") {
		t.Error("the \"not translated\" badge shows for a language with translated captions")
	}
	es.waitJS(`[...document.querySelectorAll('#player-language optgroup:first-child option')].some((o) => o.value === 'es' && o.textContent.includes('subtítulos'))`, 10*time.Second)
	if got := eval[bool](es, "document.getElementById('mode-voice-field').hidden"); got {
		t.Fatal("the phone-voice choice is hidden for a captions-only language")
	}
	if l := said(es); len(l.Spoken) > 0 {
		t.Fatalf("spoke before the voice was chosen: %+v", l.Spoken)
	}
	checkLabels(t, es)

	// The phone's voice.
	before := captionLines(es)
	chooseMode(es, "voice")
	s = es.waitStats("the voice speaking", 10*time.Second, func(s stats) bool {
		return s.str("listenMode") == "voice" && s["voiceAvailable"] == true && s.num("voiceSpoken") >= 4
	})
	if s.str("voiceName") != "Prueba Español (es-ES)" {
		t.Errorf("voice %q, want the Spanish one", s.str("voiceName"))
	}
	if got := es.text("mode-badge"); got != "Voz del teléfono · español" {
		t.Errorf("mode badge %q", got)
	}
	if !eval[bool](es, "document.getElementById('voice-note').hidden") {
		t.Errorf("a voice note shows while a voice speaks: %q", es.text("voice-note"))
	}
	l := said(es)
	lines := captionLines(es)
	dropped := int(es.stats().num("voiceDropped"))
	last, skipped := -1, 0
	for i, u := range l.Spoken {
		m := sentenceNum.FindStringSubmatch(u.Text)
		if m == nil {
			t.Fatalf("utterance %d %q is not a final caption (interim captions are never spoken)", i, u.Text)
		}
		k, _ := strconv.Atoi(m[1])
		if last >= 0 && k <= last {
			t.Errorf("utterances out of order: %q after Frase %d", u.Text, last)
		}
		if last >= 0 && k > last+1 {
			skipped += k - last - 1
		}
		last = k
		if !strings.HasPrefix(u.Lang, "es") || u.Voice != "Prueba Español" {
			t.Errorf("utterance %q in %q with voice %q, want es and the Spanish voice", u.Text, u.Lang, u.Voice)
		}
		if !contains(lines, u.Text) {
			t.Errorf("spoke %q, which is not a caption line", u.Text)
		}
		if contains(before, u.Text) {
			t.Errorf("spoke %q, a caption from before the voice was chosen", u.Text)
		}
	}
	// A caption is skipped only when the voice drops it to stay live (a
	// burst after a busy main thread, say).
	if skipped > dropped {
		t.Errorf("%d captions skipped between utterances, but the voice dropped only %d", skipped, dropped)
	}
	src := axeSource(t)
	bothSchemes(es, func(sc string) { checkAxe(t, es, src, "phone voice, "+sc) })

	// A voice slower than the speaker: old captions are dropped, the voice
	// speeds up and stays near live.
	es.do(chromedp.Evaluate[chromedp.Void](`window.__speechMs = 1500`))
	es.waitStats("captions dropped to stay live", 15*time.Second, func(s stats) bool { return s.num("voiceDropped") >= 3 })
	l = said(es)
	newest := sentenceNum.FindStringSubmatch(lines2last(captionLines(es)))
	lastSaid := sentenceNum.FindStringSubmatch(l.Spoken[len(l.Spoken)-1].Text)
	if newest != nil && lastSaid != nil {
		a, _ := strconv.Atoi(newest[1])
		b, _ := strconv.Atoi(lastSaid[1])
		// Without dropping, the voice would fall further behind with every
		// utterance (one per 1.5 s against a sentence every 0.4 s); with it,
		// at most the one being said and two waiting, about 11 sentences.
		if a-b > 12 {
			t.Errorf("the voice is %d sentences behind the captions (saying Frase %d, shown Frase %d)", a-b, b, a)
		}
	}
	if !anyRate(l.Spoken, func(r float64) bool { return r > 1 }) {
		t.Error("the voice never sped up while captions waited")
	}
	es.do(chromedp.Evaluate[chromedp.Void](`window.__speechMs = 150`))

	// Mute cancels what is spoken and waits; nothing is said while muted.
	cancels := said(es).Cancels
	sp.click("mute")
	es.waitStats("muted", 5*time.Second, func(s stats) bool { return s.str("state") == "muted" })
	if got := said(es).Cancels; got <= cancels {
		t.Errorf("muting did not cancel the voice (%d cancels, were %d)", got, cancels)
	}
	spokenMuted := len(said(es).Spoken)
	es.waitStats("nothing speaking", 5*time.Second, func(s stats) bool { return s["voiceSpeaking"] == false })
	time.Sleep(1200 * time.Millisecond) // three captions' worth, had the processor kept captioning
	if got := len(said(es).Spoken); got != spokenMuted {
		t.Errorf("%d utterances while muted", got-spokenMuted)
	}
	sp.click("mute")
	es.waitStats("speaking again", 10*time.Second, func(s stats) bool { return s.num("voiceSpoken") > 0 && len(said(es).Spoken) > spokenMuted })

	// Pause: the voice pauses with the broadcast and goes on after.
	es.do(chromedp.Evaluate[chromedp.Void](`window.__speechMs = 3000`))
	es.waitStats("a long utterance under way", 10*time.Second, func(s stats) bool { return s["voiceSpeaking"] == true })
	sp.click("pause")
	es.waitStats("paused", 5*time.Second, func(s stats) bool { return s.str("state") == "paused" })
	if said(es).Pauses == 0 {
		t.Error("the broadcast paused, the voice did not")
	}
	es.do(chromedp.Evaluate[chromedp.Void](`window.__speechMs = 150`))
	sp.click("pause")
	es.waitStats("live again", 5*time.Second, func(s stats) bool { return s.str("state") == "live" })
	if said(es).Resumes == 0 {
		t.Error("the broadcast resumed, the voice did not")
	}
	n0 := len(said(es).Spoken)
	es.waitStats("speaking after the pause", 10*time.Second, func(s stats) bool { return len(said(es).Spoken) > n0 })

	// Captions only: no audio comes (the server stops sending), captions do.
	acks := es.stats().num("playbackPausedAcks")
	chooseMode(es, "text")
	es.waitStats("captions only", 5*time.Second, func(s stats) bool { return s.str("listenMode") == "text" })
	// The server acknowledges pausePlayback after the last audio it sends.
	es.waitStats("the server's playbackPaused", 5*time.Second, func(s stats) bool { return s.num("playbackPausedAcks") > acks })
	f0, c0, v0 := es.stats().num("framesReceived"), es.stats().num("captionLines"), len(said(es).Spoken)
	s = es.waitStats("captions, no audio", 10*time.Second, func(s stats) bool { return s.num("captionLines") >= c0+3 || c0 >= 190 })
	if s.num("framesReceived") != f0 {
		t.Errorf("%v audio frames arrived in captions-only mode", s.num("framesReceived")-f0)
	}
	if got := len(said(es).Spoken); got != v0 {
		t.Errorf("the voice spoke %d captions in captions-only mode", got-v0)
	}
	if got := es.text("mode-badge"); got != "Solo subtítulos · sin sonido" {
		t.Errorf("mode badge %q", got)
	}
	chooseMode(es, "voice")
	waitPlaying(es, es.stats(), 10*time.Second)

	// The processor leaves: the language falls back to the plain original,
	// the captions clear and the voice is cancelled.
	es.do(chromedp.Evaluate[chromedp.Void](`window.__speechMs = 3000`))
	es.waitStats("an utterance under way", 10*time.Second, func(s stats) bool { return s["voiceSpeaking"] == true })
	cancels = said(es).Cancels
	stop()
	s = es.waitStats("the plain original", 15*time.Second, func(s stats) bool {
		return s["captionsServed"] == false && s.str("listenMode") == "audio" && s.num("captionLines") == 0
	})
	if said(es).Cancels <= cancels || s["voiceSpeaking"] != false {
		t.Errorf("the fallback to the original did not cancel the voice (cancels %d, were %d; speaking %v)", said(es).Cancels, cancels, s["voiceSpeaking"])
	}
	if s.str("listenModeWanted") != "voice" {
		t.Errorf("the listener's choice was forgotten: %q", s.str("listenModeWanted"))
	}
	if !eval[bool](es, "document.getElementById('mode-voice-field').hidden") {
		t.Error("the phone-voice choice still shows for a language without captions")
	}
	waitPlaying(es, es.stats(), 10*time.Second)
	checkClean(t, sp, es)
}

// TestBrowserVoiceUnavailable: a listener who chooses the phone's voice
// where the device has none for the language is told so, hears the
// original and sees the captions, and nothing is spoken. Twice: with
// headless Chromium's real speech engine as it is on this machine (no
// voices at all: checked and logged), and with a stand-in engine whose only
// voice is English, injected before the app loads.
func TestBrowserVoiceUnavailable(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	_, id := speaker(t, b, n, "en")
	captionsOnlyProcessor(t, n, &sentences{}, "es")

	for _, c := range []struct {
		name, script string
		real         bool
	}{
		{"real engine", speechRecorder, true},
		{"stand-in, English only", fakeSpeech(`[{name: 'Test English', lang: 'en-US'}, {name: 'Test English UK', lang: 'en_GB'}]`), false},
	} {
		p := listenerAt(t, b, n.url, "listener-es ("+c.name+")", id, "es", asPhone, injectScript(c.script))
		waitPlaying(p, stats{}, 15*time.Second)
		p.waitStats("captions only for Spanish", 10*time.Second, func(s stats) bool { return s["voiceOffered"] == true })
		if c.real {
			// Voices load asynchronously: give the engine its voiceschanged.
			time.Sleep(time.Second)
			voices := eval[[]string](p, `speechSynthesis.getVoices().map((v) => v.name + ' (' + v.lang + ')')`)
			t.Logf("real engine: headless Chromium reports %d voices %v", len(voices), voices)
			spanish := false
			for _, v := range voices {
				spanish = spanish || strings.Contains(v, "(es")
			}
			if spanish {
				t.Logf("this Chromium has a Spanish voice (%v): the no-voice state cannot be shown with the real engine here", voices)
				continue
			}
		}
		chooseMode(p, "voice")
		s := p.waitStats("the no-voice note", 5*time.Second, func(s stats) bool {
			return s.str("listenMode") == "voice" && s["voiceAvailable"] == false
		})
		p.waitJS(`!document.getElementById('voice-note').hidden`, 5*time.Second)
		want := "Este teléfono no tiene voz en español, así que no se lee nada en voz alta: escuchas el original, con los subtítulos. Puedes añadir una voz en los ajustes de texto a voz del teléfono."
		if got := p.text("voice-note"); got != want {
			t.Errorf("%s: note %q, want %q", c.name, got, want)
		}
		if got := eval[string](p, "document.getElementById('voice-note').getAttribute('role')"); got != "status" {
			t.Errorf("%s: the note's role is %q, want status (announced)", c.name, got)
		}
		lines := s.num("captionLines")
		p.waitStats("more captions", 10*time.Second, func(s stats) bool { return s.num("captionLines") >= lines+2 })
		waitPlaying(p, p.stats(), 10*time.Second)
		if l := said(p); len(l.Spoken) > 0 {
			t.Errorf("%s: spoke without a Spanish voice: %+v", c.name, l.Spoken)
		}
		if got := p.text("mode-badge"); got != "Audio original · subtítulos en español" {
			t.Errorf("%s: mode badge %q", c.name, got)
		}
		if !c.real {
			// The choice, the badge and the note, in both schemes.
			src := axeSource(t)
			bothSchemes(p, func(sc string) { checkAxe(t, p, src, "no voice, "+sc) })
		}
		checkClean(t, p)
	}
}

// TestBrowserWebKitVoice: the phone's voice in Safari's engine, with its
// real speech engine (WebKitGTK speaks through Flite, which has four
// English voices and no other language). An English listener of a Spanish
// session served with English captions only hears them spoken: the app
// hands each final caption to speechSynthesis with an English voice and
// the engine finishes utterances. A Spanish listener of an English session
// is told the device has no Spanish voice, and nothing is spoken.
func TestBrowserWebKitVoice(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	wk := newWebKit(t, loopbackProxy(t, n))
	wk.call("POST", "/window/rect", map[string]int{"width": phone.widthPx(), "height": phone.heightPx()}, nil)
	// Record the calls on the engine's own object, passing them on.
	record := `const rec = window.__speech = { spoken: [] }; const s = speechSynthesis; const speak = s.speak.bind(s);
		s.speak = (u) => { rec.spoken.push({ text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : '' }); speak(u); }; return true`

	// English captions over a Spanish speaker: spoken by a real voice.
	esID := goSpeakerIn(t, n, "es")
	captionsOnlyProcessor(t, n, &sentences{word: "Sentence"}, "en")
	wk.navigate(n.url + "/listen/" + esID)
	wk.waitStats("the app", 10*time.Second, func(s stats) bool { return s["ready"] == true })
	voices := wdExec[[]string](wk, "return speechSynthesis.getVoices().map((v) => v.name + ' (' + v.lang + ')')")
	t.Logf("WebKitGTK's engine reports %d voices: %v", len(voices), voices)
	wdExec[bool](wk, "document.getElementById('language').value = 'en'; return true")
	wk.click("#listen")
	wk.waitStats("English captions over the Spanish original", 20*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s["voiceOffered"] == true && s.num("captionLines") >= 1
	})
	wdExec[bool](wk, record)
	wk.click("#mode-voice")
	s := wk.waitStats("a real voice finishing utterances", 30*time.Second, func(s stats) bool {
		return s.str("listenMode") == "voice" && s.num("voiceEnded") >= 2
	})
	t.Logf("WebKit voice %q: %v utterances started, %v finished, %v captions dropped to stay live",
		s.str("voiceName"), s["voiceSpoken"], s["voiceEnded"], s["voiceDropped"])
	var spoken []utterance
	wk.call("POST", "/execute/sync", map[string]any{"script": "return window.__speech.spoken", "args": []any{}}, &spoken)
	lines := wdExec[[]string](wk, "return [...document.querySelectorAll('#caption-log p')].map((l) => l.textContent)")
	words := regexp.MustCompile(`^Sentence \d+\.$`)
	n0 := 0
	for _, u := range spoken {
		if u.Text == "" {
			continue // the unlocking utterance
		}
		n0++
		if !words.MatchString(u.Text) || !contains(lines, u.Text) || !strings.HasPrefix(u.Lang, "en") || u.Voice == "" {
			t.Errorf("utterance %+v: want a final English caption line, lang en, a named voice", u)
		}
	}
	if n0 < 2 {
		t.Errorf("%d utterances recorded", n0)
	}

	// A Spanish listener of an English session: no Spanish voice here.
	enID := goSpeakerIn(t, n, "en")
	captionsOnlyProcessor(t, n, &sentences{}, "es")
	wk.navigate(n.url + "/listen/" + enID)
	wk.waitStats("the app", 10*time.Second, func(s stats) bool { return s["ready"] == true && s.str("state") == "idle" })
	wdExec[bool](wk, "document.getElementById('language').value = 'es'; return true")
	wk.click("#listen")
	wk.waitStats("Spanish captions", 20*time.Second, func(s stats) bool { return s["voiceOffered"] == true && s.num("captionLines") >= 1 })
	wdExec[bool](wk, record)
	wk.click("#mode-voice") // chosen before, and remembered: this click changes nothing
	wk.waitStats("no Spanish voice", 10*time.Second, func(s stats) bool {
		return s.str("listenMode") == "voice" && s["voiceAvailable"] == false && s.num("captionLines") >= 3
	})
	if note := wdExec[string](wk, "const n = document.getElementById('voice-note'); return n.hidden ? '' : n.textContent"); !strings.HasPrefix(strings.ToLower(note), "este teléfono no tiene voz en español") {
		t.Errorf("WebKit: voice note %q", note)
	}
	if k := wdExec[int](wk, "return window.__speech.spoken.filter((u) => u.text !== '').length"); k != 0 {
		t.Errorf("WebKit: %d utterances without a Spanish voice", k)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lines2last(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func anyRate(us []utterance, ok func(float64) bool) bool {
	for _, u := range us {
		if ok(u.Rate) {
			return true
		}
	}
	return false
}
