package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// speakConfig is the command line of `pentecost speak`.
type speakConfig struct {
	clientFlags
	session, lang, tier, file string
	codec                     string // what to send: opus (default) or pcm16
	packetMs                  int    // a new session's packet duration; 0: the server's default
	chunk                     time.Duration
	loop, keep                bool
}

// bytesPerSecond of the session format, pcm16 16 kHz mono.
const bytesPerSecond = wav.SessionSampleRate * 2

// endTimeout bounds the wait for sessionEnded after endSession.
const endTimeout = 5 * time.Second

func parseSpeak(args []string, getenv func(string) string, stderr io.Writer) (speakConfig, error) {
	var c speakConfig
	fs := flag.NewFlagSet("speak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost speak [--file audio.wav | --file - < raw.pcm] [flags]", `
Streams a WAV file (converted to 16 kHz mono) or raw PCM16 16 kHz mono from
stdin to a new session, or to --session, in real time, encoded as Opus
(--codec pcm16 sends the PCM as it is), prints the session ID and the
listener counts, and ends the session when the input ends.

Without --token it mints a speaker token with the server's built-in issuer
key, read from --data-dir (the server's data directory, holding
issuer-key.pem); it never creates a key. The environment variables below are
read when the flag is not given (an empty variable counts as unset).`, only(clientEnv...))
	c.clientFlags.register(fs, "speaker", "cli-speaker")
	fs.StringVar(&c.session, "session", "", "attach to this existing session instead of creating one")
	fs.StringVar(&c.lang, "lang", "en", "source language of a new session")
	fs.StringVar(&c.tier, "tier", "standard", "quality tier of a new session")
	fs.StringVar(&c.file, "file", "", "WAV file (16-bit PCM, any rate and channels), .raw/.pcm file of PCM16 16 kHz mono, or - or empty for stdin (WAV or raw PCM16 16 kHz mono)")
	fs.StringVar(&c.codec, "codec", protocol.CodecOpus, "what to send: opus (about 24 kbit/s; a build without Opus sends pcm16 and says so) or pcm16 (256 kbit/s). A session attached to with --session decides")
	fs.IntVar(&c.packetMs, "packet-ms", 0, "a new session's packet duration: 20, 40 or 60 ms (0: the server's default); Opus packets are this long")
	fs.DurationVar(&c.chunk, "chunk", 20*time.Millisecond, "duration of each pcm16 chunk (Opus packets last the session's packet duration)")
	fs.BoolVar(&c.loop, "loop", false, "repeat the file until interrupted")
	fs.BoolVar(&c.keep, "keep", false, "leave the session running when the input ends (Ctrl-C still ends it)")
	err := fs.Parse(args)
	if err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, lookupNonEmpty(getenv), clientEnv...); err != nil {
		return c, err
	}
	if _, err := chunkBytes(c.chunk); err != nil {
		return c, err
	}
	if c.codec, err = protocol.ParseCodec("codec", c.codec, protocol.CodecOpus); err != nil {
		return c, fmt.Errorf("--codec: want opus or pcm16")
	}
	if c.packetMs != 0 {
		if _, err := protocol.CheckPacketMs(c.packetMs); err != nil {
			return c, fmt.Errorf("--packet-ms %d: want 20, 40 or 60", c.packetMs)
		}
	}
	if c.loop && isStdin(c.file) {
		return c, errors.New("--loop needs --file: stdin cannot be replayed")
	}
	return c, nil
}

func isStdin(file string) bool { return file == "" || file == "-" }

// chunkBytes is the size of a chunk of duration d, within the server's
// default limit of 32 KiB.
func chunkBytes(d time.Duration) (int, error) {
	n := int(int64(d) * wav.SessionSampleRate / int64(time.Second) * 2)
	if d < time.Millisecond || n > 32768 {
		return 0, fmt.Errorf("--chunk %v: want 1ms to 1.024s (at most 32 KiB of pcm16 16 kHz)", d)
	}
	return n, nil
}

func runSpeak(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseSpeak(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.token == "" {
		if cfg.token, err = cfg.mint(false); err != nil {
			return err
		}
	}
	open, err := audioInput(cfg.file, stdin)
	if err != nil {
		return err
	}
	out, errw := &serialWriter{w: stdout}, &serialWriter{w: stderr}
	cfg.codec = usableCodec(cfg.codec, "sending", errw)
	sp, ev, err := client.StartSpeaker(ctx, client.SpeakerOptions{
		Base:  cfg.server,
		Token: cfg.token,
		Params: client.SpeakParams{SessionID: cfg.session, SourceLanguage: cfg.lang, QualityTier: cfg.tier,
			AudioFormat: cfg.codec, PacketMs: cfg.packetMs},
		Logf: func(f string, a ...any) { fmt.Fprintf(errw, f+"\n", a...) },
	})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", cfg.server, cfg.explain(err))
	}
	defer sp.Close()
	enc, err := sessionEncoder(cfg, ev, errw)
	if err != nil {
		return fmt.Errorf("session %s: %w", sp.SessionID(), err)
	}
	fmt.Fprintf(out, "session %s\nlisten: pentecost listen %s --lang es\n", sp.SessionID(), sp.SessionID())
	// The server pushes sessionStatus on changes only; ask for the count
	// now so an attach to a session with listeners shows them at once.
	_ = sp.Send(ctx, map[string]any{"action": protocol.ActGetSessionStatus})
	return speakSession(ctx, sp, open, cfg, enc, out, errw)
}

// usableCodec is codec if this build can encode and decode it, else pcm16,
// saying why on log ("sending pcm16, not Opus: ...").
func usableCodec(codec, verb string, log io.Writer) string {
	if err := client.CodecAvailable(codec); err != nil {
		fmt.Fprintf(log, "%s pcm16, not Opus: %v\n", verb, err)
		return protocol.CodecPCM16
	}
	return codec
}

// audioOut turns the input's PCM into the chunks the session takes: pcm16
// as it is, or one Opus packet per packet duration.
type audioOut struct {
	chunk time.Duration // PCM per chunk
	enc   *opus.Encoder // nil for pcm16
	pcm   []int16
	pkt   []byte
}

// sessionEncoder picks what to send from the server's answer (sessionCreated
// or sessionJoined): the session's audioFormat decides, and an Opus session
// takes packets of its packetMs.
func sessionEncoder(cfg speakConfig, ev client.Event, log io.Writer) (*audioOut, error) {
	format := ev.String("audioFormat")
	if format == "" {
		format = protocol.CodecPCM16
	}
	switch format {
	case protocol.CodecPCM16:
		if cfg.codec == protocol.CodecOpus {
			fmt.Fprintln(log, "this session takes pcm16: sending pcm16")
		}
		return &audioOut{chunk: cfg.chunk}, nil
	case protocol.CodecOpus:
		ms := int(ev.Int("packetMs"))
		if ms == 0 { // a server from before packetMs
			ms = cmp.Or(cfg.packetMs, protocol.DefaultPacketMs)
		}
		enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: ms})
		if err != nil {
			return nil, fmt.Errorf("the session takes Opus, which this command cannot encode: %w", err)
		}
		fmt.Fprintf(log, "sending Opus: %d ms packets at %d kbit/s\n", ms, enc.Config().Bitrate/1000)
		return &audioOut{chunk: time.Duration(ms) * time.Millisecond, enc: enc}, nil
	}
	return nil, fmt.Errorf("the session takes %q audio, which this command cannot send", format)
}

// encode returns the chunk to send for pcm (little-endian PCM16, at most
// one chunk's worth; a short last one is padded with silence for Opus).
func (a *audioOut) encode(pcm []byte) ([]byte, error) {
	if a.enc == nil {
		return pcm, nil
	}
	a.pcm = wav.AppendSamples(a.pcm[:0], pcm)
	for len(a.pcm) < a.enc.FrameSamples() {
		a.pcm = append(a.pcm, 0)
	}
	var err error
	a.pkt, err = a.enc.Encode(a.pkt[:0], a.pcm)
	return a.pkt, err
}

// speakerSession is what speakSession needs of a *client.Speaker.
type speakerSession interface {
	SessionID() string
	SendAudio(ctx context.Context, chunk []byte) error
	Events() <-chan client.Event
	End(ctx context.Context, reason string) (client.Event, error)
	Close() error
}

// speakSession streams the input in real time, reports the session's events, and
// ends the session (unless --keep) when the input ends or ctx is cancelled.
func speakSession(ctx context.Context, sp speakerSession, open func() (io.ReadCloser, error), cfg speakConfig, out *audioOut, stdout, stderr io.Writer) error {
	var printing sync.WaitGroup
	printing.Add(1)
	go func() {
		defer printing.Done()
		for ev := range sp.Events() {
			printSpeakerEvent(ev, stdout, stderr)
		}
	}()

	sent, streamErr := streamAudio(ctx, sp, open, cfg, out)
	if streamErr != nil && !errors.Is(streamErr, client.ErrSessionEnded) {
		sp.Close()
		printing.Wait()
		return streamErr
	}
	secs := float64(sent) / bytesPerSecond
	if cfg.keep && streamErr == nil && ctx.Err() == nil {
		sp.Close()
		printing.Wait()
		fmt.Fprintf(stdout, "sent %.1f s of audio; session %s left running: attach again with --session %s\n", secs, sp.SessionID(), sp.SessionID())
		return nil
	}
	// Ctrl-C must still end the session cleanly: end on a context of our own.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	ev, err := sp.End(endCtx, "")
	sp.Close()
	printing.Wait()
	if err != nil {
		return fmt.Errorf("end session %s: %w", sp.SessionID(), err)
	}
	fmt.Fprintf(stdout, "sent %.1f s of audio\n", secs)
	if r := ev.String("reason"); r != "speakerEnded" {
		return fmt.Errorf("session %s was ended by the server (%s)", sp.SessionID(), r)
	}
	return nil
}

// streamAudio sends the input as paced chunks and returns how many bytes
// of PCM it sent. Cancellation is the normal way to stop a --loop: it
// returns nil.
func streamAudio(ctx context.Context, sp speakerSession, open func() (io.ReadCloser, error), cfg speakConfig, out *audioOut) (int64, error) {
	size, err := chunkBytes(out.chunk)
	if err != nil {
		return 0, err
	}
	pacer := client.NewPacer(time.Duration(size/2) * time.Second / wav.SessionSampleRate)
	buf := make([]byte, size)
	var sent int64
	for {
		r, err := open()
		if err != nil {
			return sent, err
		}
		before := sent
		for {
			n, rerr := io.ReadFull(r, buf)
			if n &^= 1; n > 0 {
				if pacer.Wait(ctx) != nil {
					r.Close()
					return sent, nil
				}
				chunk, err := out.encode(buf[:n])
				if err != nil {
					r.Close()
					return sent, err
				}
				if err := sp.SendAudio(ctx, chunk); err != nil {
					r.Close()
					if ctx.Err() != nil {
						return sent, nil
					}
					return sent, err
				}
				sent += int64(n)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				r.Close()
				return sent, fmt.Errorf("read audio: %w", rerr)
			}
		}
		r.Close()
		if !cfg.loop {
			return sent, nil
		}
		if sent == before {
			return sent, errors.New("--loop: the file holds no audio")
		}
	}
}

// audioInput returns a function that opens the input as pcm16 16 kHz mono,
// once per call (--loop reopens the file).
func audioInput(file string, stdin io.Reader) (func() (io.ReadCloser, error), error) {
	if isStdin(file) {
		used := false
		return func() (io.ReadCloser, error) {
			if used {
				return nil, errors.New("stdin cannot be read twice")
			}
			used = true
			return sniffStdin(stdin)
		}, nil
	}
	raw := strings.EqualFold(filepath.Ext(file), ".raw") || strings.EqualFold(filepath.Ext(file), ".pcm")
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		if raw {
			return f, nil
		}
		r, err := wav.NewReader(bufio.NewReader(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		conv, err := wav.ToSession(r)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return fileReadCloser{conv, f}, nil
	}
	// Fail on a missing or malformed file before connecting.
	r, err := open()
	if err != nil {
		return nil, err
	}
	r.Close()
	return open, nil
}

// sniffStdin reads stdin as a WAV file when it starts like one, else as raw
// pcm16 16 kHz mono: raw PCM that begins "RIFF....WAVE" does not occur.
func sniffStdin(stdin io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(stdin)
	head, _ := br.Peek(12)
	if len(head) < 12 || string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return io.NopCloser(br), nil
	}
	r, err := wav.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	conv, err := wav.ToSession(r)
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	return io.NopCloser(conv), nil
}

type fileReadCloser struct {
	io.Reader
	io.Closer
}

func printSpeakerEvent(ev client.Event, stdout, stderr io.Writer) {
	switch ev.Type {
	case protocol.TypeSessionStatus:
		fmt.Fprintln(stdout, listenerLine(ev))
	case protocol.TypeSessionJoined:
		fmt.Fprintf(stderr, "reattached to session %s\n", ev.String("sessionId"))
	case protocol.TypeError:
		fmt.Fprintf(stderr, "server error: %s: %s\n", ev.String("code"), ev.String("message"))
	case protocol.TypeConnectionWarning:
		fmt.Fprintf(stderr, "server warning: %s\n", ev.String("message"))
	case protocol.TypeBroadcastPaused, protocol.TypeBroadcastResumed, protocol.TypeBroadcastMuted, protocol.TypeBroadcastUnmuted:
		fmt.Fprintf(stderr, "broadcast %s\n", strings.ToLower(strings.TrimPrefix(ev.Type, "broadcast")))
	case protocol.TypeSessionEnded:
		fmt.Fprintf(stderr, "session ended (%s)\n", ev.String("reason"))
	}
}

// listenerLine formats a sessionStatus: "listeners: 3 (en:1 es:2)".
func listenerLine(ev client.Event) string {
	dist := ev.Map("languageDistribution")
	langs := make([]string, 0, len(dist))
	for l := range dist {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	parts := make([]string, len(langs))
	for i, l := range langs {
		n, _ := dist[l].(float64)
		parts[i] = fmt.Sprintf("%s:%d", l, int(n))
	}
	s := fmt.Sprintf("listeners: %d", ev.Int("listenerCount"))
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, " ") + ")"
	}
	return s
}

// serialWriter lets the event printer and the connection logger share an
// output.
type serialWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *serialWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
