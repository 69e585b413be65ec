package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/processor"
)

// processorConfig is the command line of `pentecost processor`.
type processorConfig struct {
	clientFlags
	languages, mode, execCmd string
	speech                   speechConfig
	captionsOnly             bool
	audioLanguages           string
	// transcript: attach with transcript=true (speech mode: on unless
	// --transcript=false).
	transcript bool
}

// processorModes are the values of --mode.
var processorModes = []string{"tone", "exec", "passthrough", "speech"}

func parseProcessor(args []string, getenv func(string) string, stderr io.Writer) (processorConfig, error) {
	var c processorConfig
	fs := flag.NewFlagSet("processor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost processor [--mode tone|exec|passthrough|speech] [--exec CMD] [flags]", `
Runs the reference translation processor: it attaches to the server, and for
every (session, language) the server assigns it (languages with listeners),
turns the session's source audio into that language's stream.

modes:
  tone         a sine tone per language (es 440 Hz, fr 523 Hz, de 587 Hz, ...)
               of the source chunk's length, and a caption "[es] tone 440 Hz"
               every 2 s: a listener hears which stream they are on
  exec         runs --exec CMD (with sh -c) per stream: source audio on its
               stdin, translated audio read from its stdout; env
               PENTECOST_SESSION_ID, PENTECOST_LANGUAGE,
               PENTECOST_SOURCE_LANGUAGE, PENTECOST_AUDIO_FORMAT
  passthrough  the source audio, unchanged, as the translation
  speech       recognizes the speaker once per session (transcript captions),
               translates each sentence into every served language (captions)
               and speaks it (translated audio); stages chosen by --asr, --mt,
               --tts, offline by default: pocketsphinx, Apertium, espeak-ng.
               Any --asr/--mt/--tts/... flag implies it. API keys come from
               PENTECOST_ASR_KEY, PENTECOST_MT_KEY, PENTECOST_TTS_KEY

examples:
  # a pitch-shifted "translation" with sox
  pentecost processor --exec 'sox -q -t raw -r 16000 -e signed -b 16 -c 1 - -t raw - pitch 400'
  # captions and voice with no account and no network (Debian packages
  # pocketsphinx-en-us, apertium-eng-spa, espeak-ng)
  pentecost processor --mode speech
  # a local whisper.cpp server, a local LibreTranslate, captions only
  pentecost processor --asr openai --asr-url http://127.0.0.1:8081/v1 \
    --mt libretranslate --mt-url http://127.0.0.1:5000 --tts none

Captions only: with --captions-only the processor publishes captions and no
audio; the listeners of its languages keep hearing the speaker and read (or
have their phone speak) the translation. --audio-languages es,fr sends audio
for those languages only, captions only for the others it serves.

Transcript: with --transcript (on by default in speech mode) the server also
gives the processor a session's source language while it has listeners, so
that they read what the speaker says even when nobody listens in another
language. In exec mode the command then runs for the source language too
(PENTECOST_LANGUAGE equal to PENTECOST_SOURCE_LANGUAGE): its caption: lines
are the transcript, its audio is not used.

Without --token it mints a processor token with the server's built-in issuer
key, read from --data-dir, for every connection; it never creates a key. The
environment variables below are read when the flag is not given (an empty
variable counts as unset).`, only(clientEnv...))
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, lookupNonEmpty(getenv), clientEnv...); err != nil {
		return c, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var speechFlag string
	for _, n := range speechFlagNames {
		if given[n] && speechFlag == "" {
			speechFlag = n
		}
	}
	c.mode = strings.ToLower(strings.TrimSpace(c.mode))
	switch {
	case c.execCmd != "" && given["mode"] && c.mode != "exec":
		return c, fmt.Errorf("--exec runs a command, which is --mode exec, not %q", c.mode)
	case c.execCmd != "" && speechFlag != "":
		return c, fmt.Errorf("--exec and --%s: the exec mode or the speech mode, not both", speechFlag)
	case c.execCmd != "":
		c.mode = "exec"
	case c.mode == "exec":
		return c, errors.New("--mode exec needs --exec CMD")
	case speechFlag != "" && given["mode"] && c.mode != "speech":
		return c, fmt.Errorf("--%s configures --mode speech, not %q", speechFlag, c.mode)
	case speechFlag != "":
		c.mode = "speech"
	}
	if c.mode == "speech" {
		if err := c.speech.check(given, getenv); err != nil {
			return c, err
		}
	}
	if c.captionsOnly && strings.TrimSpace(c.audioLanguages) != "" {
		return c, errors.New("--captions-only publishes no audio: it excludes --audio-languages")
	}
	switch {
	case c.mode == "speech" && !given["transcript"]:
		c.transcript = true // the recognizer makes one anyway
	case c.transcript && (c.mode == "tone" || c.mode == "passthrough"):
		return c, fmt.Errorf("--transcript: the %s mode makes no transcript (--mode speech does; so may an --exec command)", c.mode)
	}
	valid := false
	for _, m := range processorModes {
		valid = valid || c.mode == m
	}
	if !valid {
		return c, fmt.Errorf("--mode %q: want one of %s", c.mode, strings.Join(processorModes, ", "))
	}
	return c, nil
}

// register defines the flags of `pentecost processor`.
func (c *processorConfig) register(fs *flag.FlagSet) {
	c.clientFlags.register(fs, "processor", "reference-processor")
	fs.StringVar(&c.languages, "languages", "", "comma-separated target languages to serve (e.g. es,fr); empty serves all")
	fs.StringVar(&c.mode, "mode", "tone", "what to publish: tone, exec, passthrough or speech")
	fs.StringVar(&c.execCmd, "exec", "", "command run per (session, language) with sh -c; implies --mode exec")
	fs.BoolVar(&c.captionsOnly, "captions-only", false, "publish captions only, no audio: listeners keep the source audio (attaches with audio=none)")
	fs.StringVar(&c.audioLanguages, "audio-languages", "", "comma-separated languages to publish audio for; the others get captions only (empty: all; speech mode: those with a voice)")
	fs.BoolVar(&c.transcript, "transcript", false, "publish the transcript: be given a session's source language while it has listeners (attaches with transcript=true; default true in speech mode, false otherwise)")
	c.speech.register(fs)
}

func (c processorConfig) translator() processor.Translator {
	switch c.mode {
	case "exec":
		return &processor.Exec{Command: c.execCmd}
	case "passthrough":
		return processor.Passthrough{}
	case "speech":
		return nil // built by runProcessor, which has the logger
	default:
		return &processor.Tone{}
	}
}

func splitLanguages(list string) []string {
	var out []string
	for _, l := range strings.Split(list, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func runProcessor(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	cfg, err := parseProcessor(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	minted := cfg.token == ""
	token := processor.StaticToken(cfg.token)
	if minted {
		// Minted afresh for every connection, so reconnects outlive any one
		// token's lifetime. The first is minted now to fail early.
		mint := func() (string, error) { return cfg.mint(true) }
		if _, err := mint(); err != nil {
			return err
		}
		token = mint
	}
	errw := &serialWriter{w: stderr}
	logf := func(format string, a ...any) {
		fmt.Fprintf(errw, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	languages := splitLanguages(cfg.languages)
	captionsOnly, audioLanguages := cfg.captionsOnly, splitLanguages(cfg.audioLanguages)
	translator := cfg.translator()
	what := cfg.mode
	langs := cfg.languages
	switch cfg.mode {
	case "exec":
		what = fmt.Sprintf("exec (%s)", cfg.execCmd)
	case "speech":
		sp, err := cfg.speech.build(logf, languages)
		if err != nil {
			return err
		}
		defer sp.Close()
		translator = sp.pipeline
		if opus.Available {
			// An Opus session the server cannot decode (one built without
			// Opus) is decoded here; without Opus the pipeline says it
			// handles pcm16 sessions only and leaves it alone.
			translator = processor.PCMOnly(sp.pipeline)
		}
		what = "speech: " + sp.describe
		if len(languages) == 0 && sp.languages != nil {
			// Serving a language it cannot translate would hold its
			// listeners on silence; left unserved, they hear the speaker.
			languages = sp.languages
			langs = strings.Join(languages, ",") + " (what the translator has; --languages overrides)"
		}
		if !captionsOnly && len(audioLanguages) == 0 {
			// Say which languages get a voice, so that the listeners of
			// the others keep hearing the speaker under the captions.
			captionsOnly, audioLanguages = sp.audio(ctx, languages, logf)
		}
	}
	eng, err := processor.New(processor.Options{
		Server:         cfg.server,
		Token:          token,
		Languages:      languages,
		CaptionsOnly:   captionsOnly,
		AudioLanguages: audioLanguages,
		Transcript:     cfg.transcript,
		Translator:     translator,
		Logf:           logf,
	})
	if err != nil {
		return err
	}
	if langs == "" {
		langs = "all"
	}
	audio := "all"
	switch {
	case captionsOnly:
		audio = "none (captions only)"
	case len(audioLanguages) > 0:
		audio = strings.Join(audioLanguages, ",")
	}
	transcript := "no"
	if cfg.transcript {
		transcript = "yes (for sessions whose source language it serves)"
	}
	logf("reference processor: mode %s, languages %s, audio %s, transcript %s, server %s", what, langs, audio, transcript, cfg.server)
	err = eng.Run(ctx)
	st := eng.Stats()
	logf("stopped: published %d audio chunks and %d captions; %d source chunks dropped by slow workers, %d worker restarts",
		st.AudioChunks, st.Captions, st.Dropped, st.Restarts)
	var se *client.ServerError
	if minted && errors.As(err, &se) && se.Status == 401 {
		return fmt.Errorf("%w (the token was minted from --data-dir %s: is that the server's data dir? or pass --token)", err, cfg.dataDir)
	}
	return err
}
