package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// listenConfig is the command line of `pentecost listen`.
type listenConfig struct {
	server, session, lang, out, encoding, codec string
	raw                                         bool
	duration                                    time.Duration
}

func parseListen(args []string, getenv func(string) string, stderr io.Writer) (listenConfig, error) {
	var c listenConfig
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost listen SESSION_ID --lang es [--out file.wav|-] [flags]", `
Joins a session and writes its audio (pcm16 16 kHz mono) to a WAV file, or to
stdout with --out -. It receives Opus and decodes it (--codec pcm16 receives
PCM instead). Listening needs no token. The environment variable below
is read when the flag is not given (an empty variable counts as unset).`, only("server"))
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "server base URL")
	fs.StringVar(&c.lang, "lang", "", "language to hear (required), e.g. es")
	fs.StringVar(&c.out, "out", "", "output file, or - for stdout (default SESSION_ID-LANG.wav)")
	fs.BoolVar(&c.raw, "raw", false, "write raw PCM without a WAV header")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: until the session ends or Ctrl-C)")
	fs.StringVar(&c.encoding, "encoding", "binary", "audio delivery: binary frames or base64 JSON messages")
	fs.StringVar(&c.codec, "codec", protocol.CodecOpus, "codec to receive: opus (about 30 kbit/s, decoded here; a build without Opus asks for pcm16 and says so) or pcm16 (262 kbit/s)")
	// The flag package stops at the first argument that is not a flag, so
	// the session ID may sit before the flags: take it and parse the rest.
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		c.session = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return c, err
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, lookupNonEmpty(getenv), "server"); err != nil {
		return c, err
	}
	switch {
	case c.session == "":
		return c, errors.New("missing SESSION_ID (usage: pentecost listen SESSION_ID --lang es)")
	case c.lang == "":
		return c, errors.New("--lang is required")
	case c.encoding != "binary" && c.encoding != "base64":
		return c, fmt.Errorf("--encoding %q: want binary or base64", c.encoding)
	case c.duration < 0:
		return c, errors.New("--duration must not be negative")
	}
	// The same parser as speak's and the server's, so that --codec OPUS
	// means here what it means there.
	codec, err := protocol.ParseCodec("codec", c.codec, protocol.CodecOpus)
	if err != nil {
		return c, fmt.Errorf("--codec %q: want opus or pcm16", c.codec)
	}
	c.codec = codec
	if c.out == "" {
		c.out = c.session + "-" + c.lang + ".wav"
		if c.raw {
			c.out = c.session + "-" + c.lang + ".pcm"
		}
	}
	return c, nil
}

func runListen(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseListen(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	errw := &serialWriter{w: stderr}
	cfg.codec = usableCodec(cfg.codec, "asking for", errw)
	l, joined, err := client.StartListener(ctx, client.ListenerOptions{
		Base:   cfg.server,
		Params: client.ListenParams{SessionID: cfg.session, Language: cfg.lang, Encoding: cfg.encoding, Codec: cfg.codec},
		Logf:   func(f string, a ...any) { fmt.Fprintf(errw, f+"\n", a...) },
	})
	if err != nil {
		return fmt.Errorf("join %s at %s: %w", cfg.session, cfg.server, err)
	}
	defer l.Close()
	fmt.Fprintln(errw, joinedLine(joined))
	dec, err := decoderFor(joined, cfg.codec, errw)
	if err != nil {
		return fmt.Errorf("session %s: %w", cfg.session, err)
	}

	sink, finish, err := openSink(cfg, stdout)
	if err != nil {
		return err
	}
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	st, err := receiveAudio(ctx, l, dec, sink, errw)
	l.Close()
	if ferr := finish(); ferr != nil && err == nil {
		err = ferr
	}
	fmt.Fprintln(errw, st.summary())
	if cfg.out != "-" {
		fmt.Fprintf(errw, "wrote %s\n", cfg.out)
	}
	return err
}

// openSink opens the output: a WAV or raw file, or stdout. finish
// completes the WAV header and closes the file.
func openSink(cfg listenConfig, stdout io.Writer) (io.Writer, func() error, error) {
	var w io.Writer = stdout
	closeFile := func() error { return nil }
	if cfg.out != "-" {
		f, err := os.Create(cfg.out)
		if err != nil {
			return nil, nil, err
		}
		w, closeFile = f, f.Close
	}
	if cfg.raw {
		return w, closeFile, nil
	}
	// On a pipe this writes the streaming header; on a file, stdout
	// redirected to one included, Close fixes the sizes.
	ww, err := wav.NewWriter(w, wav.SessionSampleRate, wav.SessionChannels)
	if err != nil {
		closeFile()
		return nil, nil, err
	}
	return ww, func() error {
		err := ww.Close()
		if cerr := closeFile(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// codecOf is the codec a sessionJoined says the listener receives.
func codecOf(joined client.Event) string {
	// A server from before codecs sends only audioFormat, which was then
	// what every listener received.
	return cmp.Or(joined.String("codec"), joined.String("audioFormat"), protocol.CodecPCM16)
}

// decoderFor returns the decoder of the codec sessionJoined names, saying
// so when it is not the one asked for.
func decoderFor(joined client.Event, asked string, log io.Writer) (*client.Decoder, error) {
	codec := codecOf(joined)
	if codec != asked {
		why := "the server did not say why"
		if joined.Has("transcoding") && !joined.Bool("transcoding") {
			why = "the server cannot convert between codecs (it was built without Opus)"
		}
		fmt.Fprintf(log, "receiving %s, not %s: %s\n", codec, asked, why)
	}
	dec, err := client.NewDecoder(codec)
	if err != nil {
		return nil, fmt.Errorf("it sends %s audio, which this command cannot decode: %w", codec, err)
	}
	return dec, nil
}

// listenStats are what receiveAudio saw.
type listenStats struct {
	gaps     client.GapStats
	received int64 // chunk bytes received
	pcm      int64 // PCM bytes written, concealment included
}

func (s listenStats) summary() string {
	return fmt.Sprintf("received %d chunks (%.1f s of audio, %.1f kB), %d gaps (%d chunks missing), %d duplicates, %d late",
		s.gaps.Received, float64(s.pcm)/bytesPerSecond, float64(s.received)/1000, s.gaps.Gaps, s.gaps.Missing, s.gaps.Duplicates, s.gaps.Late)
}

// eventSource is what receiveAudio needs of a *client.Listener.
type eventSource interface {
	Next(ctx context.Context) (client.Event, error)
}

// receiveAudio decodes the session's audio with dec and writes it to sink in
// sequence order, dropping duplicates and late chunks and concealing the
// gaps of an Opus stream, and reports what happens on log. It returns nil
// when the session ends or ctx does (Ctrl-C, --duration).
func receiveAudio(ctx context.Context, src eventSource, dec *client.Decoder, sink io.Writer, log io.Writer) (listenStats, error) {
	var (
		st   listenStats
		g    client.GapTracker
		kind = -1
		pcm  []byte
	)
	// newStream starts over: another stream numbers and codes its chunks
	// afresh.
	newStream := func() {
		g.Reset()
		if err := dec.Reset(); err != nil {
			fmt.Fprintf(log, "decoder reset: %v\n", err)
		}
	}
	done := func(err error) (listenStats, error) {
		st.gaps = g.Stats()
		return st, err
	}
	for {
		ev, err := src.Next(ctx)
		var fe *client.FrameError
		var se *client.ServerError
		switch {
		case err == nil:
		case ctx.Err() != nil, errors.Is(err, client.ErrSessionEnded):
			return done(nil)
		case errors.As(err, &fe):
			fmt.Fprintf(log, "ignoring %v\n", err)
			continue
		case errors.As(err, &se) && se.Code == "SESSION_NOT_FOUND":
			// Only a reconnect gets here: the first join succeeded.
			fmt.Fprintln(log, "the session has ended (it ended while this listener was disconnected)")
			return done(nil)
		default:
			return done(err)
		}
		if !ev.IsAudio() {
			switch ev.Type {
			case protocol.TypeLanguageChanged:
				newStream()
			case protocol.TypeSessionJoined: // a reconnect: the codec may differ
				if c := codecOf(ev); c != dec.Codec() {
					nd, err := client.NewDecoder(c)
					if err != nil {
						return done(fmt.Errorf("the server now sends %s audio, which this command cannot decode: %w", c, err))
					}
					fmt.Fprintf(log, "receiving %s now\n", c)
					dec = nd
				}
			}
			if line := statusLine(ev); line != "" {
				fmt.Fprintln(log, line)
			}
			if ev.Type == protocol.TypeSessionEnded {
				return done(nil)
			}
			continue
		}
		f, err := ev.AudioFromJSON()
		if err != nil {
			fmt.Fprintf(log, "ignoring audio: %v\n", err)
			continue
		}
		if k := int(f.Header.Kind); k != kind {
			if kind != -1 {
				newStream() // source and translated streams are numbered apart
			}
			if k == protocol.KindTranslated {
				fmt.Fprintln(log, "hearing translated audio")
			} else if kind != -1 {
				fmt.Fprintln(log, "hearing the source audio (untranslated)")
			}
			kind = k
		}
		v, gap := g.Observe(f.Header.Sequence)
		if v != client.New {
			continue
		}
		pcm = pcm[:0]
		if gap != nil {
			fmt.Fprintln(log, gap)
			if pcm, err = dec.Conceal(pcm, gap.Missing()); err != nil {
				fmt.Fprintf(log, "concealing the gap: %v\n", err)
			}
		}
		st.received += int64(len(f.Chunk))
		if pcm, err = dec.Decode(pcm, f.Chunk); err != nil {
			fmt.Fprintf(log, "ignoring a chunk it cannot decode (seq %d): %v\n", f.Header.Sequence, err)
		}
		if _, err := sink.Write(pcm); err != nil {
			return done(fmt.Errorf("write audio: %w", err))
		}
		st.pcm += int64(len(pcm))
	}
}

func joinedLine(ev client.Event) string {
	s := fmt.Sprintf("joined %s (%s): %d listeners", ev.String("sessionId"), ev.String("targetLanguage"), ev.Int("listenerCount"))
	switch src := ev.String("sourceLanguage"); {
	case src == ev.String("targetLanguage") && ev.Bool("captions"):
		s += ", the source language, with its transcript"
	case src == ev.String("targetLanguage"):
		s += ", the source language"
	case ev.Bool("translated"):
		s += ", translated"
	case ev.Bool("captions") && src != "":
		s += fmt.Sprintf(", captions only: hearing the source audio (%s), with translated captions", src)
	case src != "":
		s += fmt.Sprintf(", untranslated for now: hearing the source audio (%s)", src)
	}
	if ev.Has("speakerConnected") && !ev.Bool("speakerConnected") {
		s += "; waiting for the speaker"
	}
	return s
}

// statusLine describes a control message for the listener, or "".
func statusLine(ev client.Event) string {
	switch ev.Type {
	case protocol.TypeSessionJoined:
		return "re" + joinedLine(ev)
	case protocol.TypeSpeakerDisconnected:
		return fmt.Sprintf("speaker disconnected (the session waits %d s for them)", ev.Int("graceSeconds"))
	case protocol.TypeSpeakerReconnected:
		return "speaker reconnected"
	case protocol.TypeBroadcastPaused:
		return "broadcast paused"
	case protocol.TypeBroadcastResumed:
		return "broadcast resumed"
	case protocol.TypeBroadcastMuted:
		return "broadcast muted"
	case protocol.TypeBroadcastUnmuted:
		return "broadcast unmuted"
	case protocol.TypeLanguageChanged:
		s := "language changed to " + ev.String("targetLanguage")
		switch {
		case ev.String("targetLanguage") == ev.String("sourceLanguage") && ev.Bool("captions"):
			s += ", the source language, with its transcript"
		case ev.String("targetLanguage") == ev.String("sourceLanguage"):
			s += ", the source language, no transcript"
		case ev.Bool("translated"):
			s += ", translated"
		case ev.Bool("captions"):
			s += ", captions only (source audio)"
		default:
			s += ", untranslated (source audio)"
		}
		return s
	case protocol.TypeConnectionWarning:
		return "server warning: " + ev.String("message")
	case protocol.TypeCaption:
		if ev.Bool("final") {
			return "caption: " + ev.String("text")
		}
	case protocol.TypeError:
		return fmt.Sprintf("server error: %s: %s", ev.String("code"), ev.String("message"))
	case protocol.TypeSessionEnded:
		s := fmt.Sprintf("session ended (%s)", ev.String("reason"))
		if m := ev.String("message"); m != "" {
			s += ": " + m
		}
		return s
	}
	return ""
}
