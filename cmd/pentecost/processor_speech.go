package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pentecost/pentecost/processor/speech"
	"github.com/pentecost/pentecost/processor/speech/offline"
	"github.com/pentecost/pentecost/processor/speech/webapi"
)

// Environment variables holding the speech stages' API keys. Keys are never
// flags: a command line shows in process lists.
const (
	envASRKey = "PENTECOST_ASR_KEY"
	envMTKey  = "PENTECOST_MT_KEY"
	envTTSKey = "PENTECOST_TTS_KEY"
)

// speechConfig is the command line of --mode speech.
type speechConfig struct {
	asr, asrURL, asrModel       string
	asrInterim                  time.Duration
	mt, mtURL                   string
	tts, ttsURL, ttsModel       string
	ttsVoice                    string
	vad                         string
	pause, maxSentence, timeout time.Duration
	// keys, from the environment
	asrKey, mtKey, ttsKey string
}

// speechFlagNames are the flags that select --mode speech.
var speechFlagNames = []string{"asr", "asr-url", "asr-model", "asr-interim", "mt", "mt-url", "tts", "tts-url", "tts-model", "tts-voice", "vad", "pause", "max-sentence", "stage-timeout"}

func (c *speechConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.asr, "asr", "pocketsphinx", "speech mode: recognizer, pocketsphinx or openai (an OpenAI-compatible /audio/transcriptions API)")
	fs.StringVar(&c.asrURL, "asr-url", "", "speech mode, --asr openai: the API's base URL (default "+webapi.DefaultOpenAIURL+"); key in "+envASRKey)
	fs.StringVar(&c.asrModel, "asr-model", "", "speech mode, --asr openai: the model (default whisper-1)")
	fs.DurationVar(&c.asrInterim, "asr-interim", 0, "speech mode, --asr openai: also transcribe the sentence so far every this much speech, for interim transcripts (0: off; each is a request)")
	fs.StringVar(&c.mt, "mt", "apertium", "speech mode: translator, apertium, libretranslate, deepl or none (the transcript only; served languages hear the source)")
	fs.StringVar(&c.mtURL, "mt-url", "", "speech mode: the LibreTranslate server's URL (required), or DeepL's API URL (default by key); key in "+envMTKey)
	fs.StringVar(&c.tts, "tts", "espeak", "speech mode: synthesizer, espeak (espeak-ng), openai (an OpenAI-compatible /audio/speech API) or none (captions only)")
	fs.StringVar(&c.ttsURL, "tts-url", "", "speech mode, --tts openai: the API's base URL (default "+webapi.DefaultOpenAIURL+"); key in "+envTTSKey)
	fs.StringVar(&c.ttsModel, "tts-model", "", "speech mode, --tts openai: the model (default tts-1)")
	fs.StringVar(&c.ttsVoice, "tts-voice", "", "speech mode: voices per language, es=es-419,fr=fr; --tts openai also takes one voice for every language (default alloy)")
	fs.StringVar(&c.vad, "vad", "energy", "speech mode: how sentences are found, energy (cut at pauses) or none (cut every --max-sentence)")
	fs.DurationVar(&c.pause, "pause", 500*time.Millisecond, "speech mode: the silence that ends a sentence")
	fs.DurationVar(&c.maxSentence, "max-sentence", 12*time.Second, "speech mode: cut sentences longer than this")
	fs.DurationVar(&c.timeout, "stage-timeout", 15*time.Second, "speech mode: the longest one recognition, translation or synthesis may take")
}

// check validates the speech flags; given holds the names of the flags on
// the command line.
func (c *speechConfig) check(given map[string]bool, getenv func(string) string) error {
	c.asrKey, c.mtKey, c.ttsKey = getenv(envASRKey), getenv(envMTKey), getenv(envTTSKey)
	c.asr, c.mt, c.tts, c.vad = strings.ToLower(c.asr), strings.ToLower(c.mt), strings.ToLower(c.tts), strings.ToLower(c.vad)
	oneOf := func(flag, v string, valid ...string) error {
		if slices.Contains(valid, v) {
			return nil
		}
		return fmt.Errorf("--%s %q: want one of %s", flag, v, strings.Join(valid, ", "))
	}
	onlyWith := func(flag, stage, engine, value string) error {
		if given[flag] && value != engine {
			return fmt.Errorf("--%s is for --%s %s", flag, stage, engine)
		}
		return nil
	}
	var errs []error
	errs = append(errs,
		oneOf("asr", c.asr, "pocketsphinx", "openai"),
		oneOf("mt", c.mt, "apertium", "libretranslate", "deepl", "none"),
		oneOf("tts", c.tts, "espeak", "openai", "none"),
		oneOf("vad", c.vad, "energy", "none"),
		onlyWith("asr-url", "asr", "openai", c.asr),
		onlyWith("asr-model", "asr", "openai", c.asr),
		onlyWith("asr-interim", "asr", "openai", c.asr),
		onlyWith("tts-url", "tts", "openai", c.tts),
		onlyWith("tts-model", "tts", "openai", c.tts),
	)
	if given["mt-url"] && c.mt != "libretranslate" && c.mt != "deepl" {
		errs = append(errs, errors.New("--mt-url is for --mt libretranslate or deepl"))
	}
	if c.mt == "libretranslate" && c.mtURL == "" {
		errs = append(errs, errors.New("--mt libretranslate needs --mt-url, the server's URL (http://127.0.0.1:5000 for a local one)"))
	}
	if c.mt == "deepl" && c.mtKey == "" {
		errs = append(errs, fmt.Errorf("--mt deepl needs the API key in %s", envMTKey))
	}
	if c.mt == "none" {
		// Nothing translated, nothing to speak.
		if given["tts"] && c.tts != "none" {
			errs = append(errs, fmt.Errorf("--tts %s with --mt none: there is no translation to speak", c.tts))
		}
		c.tts = "none"
	}
	if given["tts-voice"] && c.tts == "none" {
		errs = append(errs, errors.New("--tts-voice with --tts none"))
	}
	if _, _, err := parseVoices(c.ttsVoice); err != nil {
		errs = append(errs, err)
	}
	if c.pause < 100*time.Millisecond || c.maxSentence < time.Second || c.pause >= c.maxSentence {
		errs = append(errs, errors.New("want --pause of at least 100ms, --max-sentence of at least 1s, and the pause shorter"))
	}
	if c.timeout <= 0 {
		errs = append(errs, errors.New("--stage-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// parseVoices reads --tts-voice: one voice for all languages, or
// LANG=VOICE pairs (a pair without a language, =VOICE, sets the default).
func parseVoices(s string) (def string, per map[string]string, err error) {
	per = map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lang, voice, found := strings.Cut(item, "=")
		if !found {
			if def != "" {
				return "", nil, fmt.Errorf("--tts-voice %q: two voices for every language", s)
			}
			def = item
			continue
		}
		lang, voice = strings.ToLower(strings.TrimSpace(lang)), strings.TrimSpace(voice)
		if voice == "" {
			return "", nil, fmt.Errorf("--tts-voice %q: no voice for %q", s, lang)
		}
		if lang == "" {
			def = voice
		} else {
			per[lang] = voice
		}
	}
	return def, per, nil
}

// speechSetup is a built pipeline and what it needs at the end.
type speechSetup struct {
	pipeline *speech.Pipeline
	// synth speaks the translations (nil: --tts none); translates is
	// false with --mt none, when the source passes through as the audio.
	synth      speech.Synthesizer
	translates bool
	// languages served when --languages is not given: nil means all.
	languages []string
	describe  string
	closers   []io.Closer
}

func (s *speechSetup) Close() {
	for _, c := range s.closers {
		_ = c.Close()
	}
}

// build makes the stages (failing early, with the package to install, when
// a program or model is missing) and the pipeline.
func (c *speechConfig) build(logf func(string, ...any), explicitLanguages []string) (*speechSetup, error) {
	s := &speechSetup{}
	o := speech.Options{
		Segmenter:  speech.SegmenterConfig{Pause: c.pause, MaxSentence: c.maxSentence},
		ASRTimeout: c.timeout, MTTimeout: c.timeout, TTSTimeout: c.timeout,
		Logf: logf, LogTimings: true,
	}
	if c.vad == "none" {
		o.NewVAD = func() speech.VAD { return speech.AlwaysSpeech{} }
	}
	warn := func(url, key string) {
		if w := webapi.PlainHTTPWarning(url, key != ""); w != "" {
			logf("warning: %s", w)
		}
	}
	var parts []string
	switch c.asr {
	case "pocketsphinx":
		ps, err := offline.NewPocketsphinx(offline.PocketsphinxConfig{})
		if err != nil {
			return nil, err
		}
		o.Recognizer = ps
		parts = append(parts, "recognition pocketsphinx (US English)")
	case "openai":
		url, model := cmp.Or(c.asrURL, webapi.DefaultOpenAIURL), cmp.Or(c.asrModel, "whisper-1")
		tr, err := webapi.NewTranscriptions(webapi.TranscriptionsConfig{URL: url, Model: model, Key: c.asrKey, Interim: c.asrInterim})
		if err != nil {
			return nil, err
		}
		warn(url, c.asrKey)
		o.Recognizer = tr
		parts = append(parts, fmt.Sprintf("recognition %s at %s%s", model, url, keyNote(c.asrKey, envASRKey)))
	}
	switch c.mt {
	case "apertium":
		a, err := offline.NewApertium("")
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, a)
		if len(a.Pairs()) == 0 {
			s.Close()
			return nil, errors.New("apertium: no language pair installed (Debian/Ubuntu: apt-get install apertium-eng-spa, or another apertium-xxx-yyy)")
		}
		o.Translator = a
		s.languages = a.Targets()
		for _, l := range explicitLanguages {
			if !slices.Contains(a.Targets(), l) {
				logf("warning: no installed Apertium pair translates into %s: its listeners get no captions or voice from this processor", l)
			}
		}
		parts = append(parts, "translation Apertium ("+strings.Join(a.Pairs(), ", ")+")")
	case "libretranslate":
		lt, err := webapi.NewLibreTranslate(webapi.LibreTranslateConfig{URL: c.mtURL, Key: c.mtKey})
		if err != nil {
			return nil, err
		}
		warn(c.mtURL, c.mtKey)
		o.Translator = lt
		parts = append(parts, "translation LibreTranslate at "+c.mtURL+keyNote(c.mtKey, envMTKey))
	case "deepl":
		d, err := webapi.NewDeepL(webapi.DeepLConfig{URL: c.mtURL, Key: c.mtKey})
		if err != nil {
			return nil, err
		}
		warn(c.mtURL, c.mtKey)
		o.Translator = d
		parts = append(parts, "translation DeepL"+keyNote(c.mtKey, envMTKey))
	case "none":
		parts = append(parts, "no translation (the transcript only; served languages hear the source)")
	}
	def, per, _ := parseVoices(c.ttsVoice)
	switch c.tts {
	case "espeak":
		if def != "" {
			s.Close()
			return nil, errors.New("--tts espeak takes voices per language (--tts-voice es=es-419): espeak-ng voices are per language")
		}
		e, err := offline.NewEspeak(offline.EspeakConfig{Voices: per})
		if err != nil {
			s.Close()
			return nil, err
		}
		o.Synthesizer = e
		parts = append(parts, "voice espeak-ng")
	case "openai":
		url, model := cmp.Or(c.ttsURL, webapi.DefaultOpenAIURL), cmp.Or(c.ttsModel, "tts-1")
		sp, err := webapi.NewSpeech(webapi.SpeechConfig{URL: url, Model: model, Voice: cmp.Or(def, "alloy"), Voices: per, Key: c.ttsKey})
		if err != nil {
			s.Close()
			return nil, err
		}
		warn(url, c.ttsKey)
		o.Synthesizer = sp
		parts = append(parts, fmt.Sprintf("voice %s at %s%s", model, url, keyNote(c.ttsKey, envTTSKey)))
	case "none":
		parts = append(parts, "no voice (captions only)")
	}
	s.synth, s.translates = o.Synthesizer, o.Translator != nil
	p, err := speech.New(o)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.pipeline, s.describe = p, strings.Join(parts, ", ")
	return s, nil
}

// keyNote says whether a key was found, never what it is.
func keyNote(key, env string) string {
	if key == "" {
		return " (no key: " + env + " is empty)"
	}
	return " (key from " + env + ")"
}

// audio works out the processor's audio= for the server: captions only
// without a synthesizer (--tts none), so that listeners keep the speaker's
// voice under the captions instead of silence; with one and a known list of
// languages, the languages it has a voice for (each checked once, as the
// pipeline would). With every language served (no list) it cannot know, and
// claims audio for all: a language without a voice then gets its captions
// over silence, as the log says. --mt none passes the source through as
// the audio: audio for all.
func (s *speechSetup) audio(ctx context.Context, langs []string, logf func(string, ...any)) (captionsOnly bool, voiced []string) {
	switch {
	case !s.translates:
		return false, nil
	case s.synth == nil:
		return true, nil
	case len(langs) == 0:
		return false, nil
	}
	for _, l := range langs {
		pctx, cancel := context.WithTimeout(ctx, speech.DefaultPrepareTimeout)
		err := s.synth.Prepare(pctx, l)
		cancel()
		if err != nil {
			logf("no %s voice (%v): %s listeners get the speaker's audio with the captions", l, err, l)
			continue
		}
		voiced = append(voiced, l)
	}
	switch {
	case len(voiced) == 0:
		return true, nil
	case len(voiced) == len(langs):
		return false, nil
	}
	return false, voiced
}
