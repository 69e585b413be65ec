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
	"github.com/pentecost/pentecost/processor"
)

// processorConfig is the command line of `pentecost processor`.
type processorConfig struct {
	clientFlags
	languages, mode, execCmd string
}

// processorModes are the values of --mode.
var processorModes = []string{"tone", "exec", "passthrough"}

func parseProcessor(args []string, getenv func(string) string, stderr io.Writer) (processorConfig, error) {
	var c processorConfig
	fs := flag.NewFlagSet("processor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost processor [--mode tone|exec|passthrough] [--exec CMD] [flags]", `
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

example (a pitch-shifted "translation" with sox):
  pentecost processor --exec 'sox -q -t raw -r 16000 -e signed -b 16 -c 1 - -t raw - pitch 400'

Without --token it mints a processor token with the server's built-in issuer
key, read from --data-dir, for every connection; it never creates a key. The
environment variables below are read when the flag is not given (an empty
variable counts as unset).`, only(clientEnv...))
	c.clientFlags.register(fs, "processor", "reference-processor")
	fs.StringVar(&c.languages, "languages", "", "comma-separated target languages to serve (e.g. es,fr); empty serves all")
	fs.StringVar(&c.mode, "mode", "tone", "what to publish: tone, exec or passthrough")
	fs.StringVar(&c.execCmd, "exec", "", "command run per (session, language) with sh -c; implies --mode exec")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, lookupNonEmpty(getenv), clientEnv...); err != nil {
		return c, err
	}
	modeGiven := false
	fs.Visit(func(f *flag.Flag) { modeGiven = modeGiven || f.Name == "mode" })
	c.mode = strings.ToLower(strings.TrimSpace(c.mode))
	switch {
	case c.execCmd != "" && modeGiven && c.mode != "exec":
		return c, fmt.Errorf("--exec runs a command, which is --mode exec, not %q", c.mode)
	case c.execCmd != "":
		c.mode = "exec"
	case c.mode == "exec":
		return c, errors.New("--mode exec needs --exec CMD")
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

func (c processorConfig) translator() processor.Translator {
	switch c.mode {
	case "exec":
		return &processor.Exec{Command: c.execCmd}
	case "passthrough":
		return processor.Passthrough{}
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
	eng, err := processor.New(processor.Options{
		Server:     cfg.server,
		Token:      token,
		Languages:  splitLanguages(cfg.languages),
		Translator: cfg.translator(),
		Logf:       logf,
	})
	if err != nil {
		return err
	}
	langs := cfg.languages
	if langs == "" {
		langs = "all"
	}
	what := cfg.mode
	if cfg.mode == "exec" {
		what = fmt.Sprintf("exec (%s)", cfg.execCmd)
	}
	logf("reference processor: mode %s, languages %s, server %s", what, langs, cfg.server)
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
