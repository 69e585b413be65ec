// Package bench is Pentecost's load generator: it drives real sessions over
// real WebSockets (S speakers, L listeners per session over K languages),
// measures what listeners receive (delivered frames/s, latency from the
// speaker's send to the listener's receive, loss, drops, join latency) and
// what the server spends (CPU per million delivered frames, RSS and
// goroutines per connection), and runs the same workload against a bare
// fan-out server (package baseline) so Pentecost's figures can be read as
// ratios to a floor measured in the same invocation.
//
// By default each server runs as a child process (the pentecost binary
// re-executed), so its CPU time and memory are its own; tests use an
// in-process server instead.
package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

// Config is one invocation of the load generator.
type Config struct {
	Speakers  int // S: sessions, one speaker each
	Listeners int // L: listeners per session
	Languages int // K: target languages the listeners are spread over
	// Codec is what the speakers send and the listeners ask for: pcm16 or
	// opus. Opus speakers send real packets of PacketMs, encoded at
	// start-up.
	Codec string
	// ListenerCodec is what the listeners ask for when it is not Codec
	// ("": Codec): the server converts, once per session, which a run
	// measures. The speakers then send one chunk per PacketMs, so each
	// converted packet or chunk carries the number of the chunk it comes
	// from and latency is measured as usual. Needs a server with Opus.
	ListenerCodec string
	PacketMs      int           // Opus packet duration: 20, 40 or 60; ChunkInterval must match it
	ChunkBytes    int           // bytes per pcm16 chunk (Opus packets are as long as the encoder makes them)
	ChunkInterval time.Duration // one chunk per interval per speaker

	Duration time.Duration // the measurement window
	Warmup   time.Duration // audio flows this long before the window opens
	Drain    time.Duration // after the window, how long in-flight chunks may take
	Settle   time.Duration // quiet time before the idle memory snapshot

	JoinStorm       time.Duration // > 0: listeners join spread over this while audio flows
	JoinConcurrency int           // joins in flight at once outside a storm
	JoinTimeout     time.Duration // a join slower than this failed
	Stalled         int           // extra listeners that join and never read
	// StalledChunkBytes > 0 puts the stalled listeners in a session of
	// their own whose speaker sends chunks this large, so their backlog
	// outgrows the server's socket buffers (megabytes on loopback) and
	// reaches its queue within a bounded run. 0: they join the measured
	// sessions.
	StalledChunkBytes int

	// URL targets an already running server (ws://127.0.0.1:port/ws). It
	// must be loopback. Token is its speaker token; ServerPID, when known,
	// lets the run read the server's CPU and memory.
	URL       string
	Token     string
	ServerPID int

	// InProcess runs the server inside this process (tests). Server CPU and
	// memory are then not separable from the generator's and are omitted.
	InProcess bool
	// ChildCommand is the argv prefix that starts a server child; the run
	// appends the kind ("pentecost" or "baseline") and its flags. The child
	// prints "BENCH-SERVER-ADDR host:port" on stdout once it listens.
	ChildCommand []string
	// ServerArgs are extra flags for the Pentecost child (serve's flags).
	ServerArgs []string

	Pentecost bool // measure Pentecost (the default)
	Baseline  bool // measure the bare fan-out baseline too

	Repeat int // runs per server, alternating; the median (by p99) is reported

	FindMax      bool          // ramp L until a bound breaks
	MaxP99       time.Duration // find-max bound on p99 latency
	Step         int           // find-max step in listeners per session
	MaxListeners int           // find-max ceiling, listeners per session
	// Retries reruns a failed find-max step; the step passes if any run
	// does. Noise from other processes only adds latency, so a pass under
	// noise is a real pass.
	Retries int

	// ProfileDir, when set, receives cpu-<kind>.pprof (the measurement
	// window) and heap-<kind>.pprof (its end) from each server child.
	ProfileDir string

	Progress         io.Writer // progress lines; nil = silent
	ProgressInPlace  bool      // Progress is a terminal: redraw one line
	ProgressInterval time.Duration
	Timeout          time.Duration // bound on the whole invocation
}

// Defaults returns the documented defaults: one session of 100 listeners,
// 640-byte chunks every 20 ms (16 kHz PCM16), 10 s after 2 s of warm-up.
func Defaults() Config {
	return Config{
		Speakers:         1,
		Listeners:        100,
		Languages:        1,
		Codec:            protocol.CodecPCM16,
		ChunkBytes:       640,
		ChunkInterval:    20 * time.Millisecond,
		Duration:         10 * time.Second,
		Warmup:           2 * time.Second,
		Drain:            5 * time.Second,
		Settle:           time.Second,
		JoinConcurrency:  32,
		JoinTimeout:      15 * time.Second,
		Pentecost:        true,
		MaxP99:           150 * time.Millisecond,
		Step:             500,
		MaxListeners:     20000,
		ProgressInterval: time.Second,
		Timeout:          10 * time.Minute,
	}
}

// languages the listeners are spread over, the source first.
var languages = []string{"en", "es", "fr", "de", "pt", "it", "nl", "pl", "ru", "zh", "ja", "ko", "ar", "hi", "sw", "uk"}

// Rate is the chunks per second of one speaker.
func (c Config) Rate() float64 { return float64(time.Second) / float64(c.ChunkInterval) }

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Speakers < 1:
		return errors.New("speakers must be at least 1")
	case c.Listeners < 0:
		return errors.New("listeners must not be negative")
	case c.Languages < 1 || c.Languages > len(languages):
		return fmt.Errorf("languages must be 1..%d", len(languages))
	case c.Codec != protocol.CodecPCM16 && c.Codec != protocol.CodecOpus:
		return fmt.Errorf("codec %q: want pcm16 or opus", c.Codec)
	case c.Codec == protocol.CodecOpus && !slices.Contains(protocol.PacketDurations, c.PacketMs):
		return fmt.Errorf("packet-ms %d: an Opus run needs 20, 40 or 60", c.PacketMs)
	case c.Codec == protocol.CodecOpus && c.ChunkInterval != time.Duration(c.PacketMs)*time.Millisecond:
		return fmt.Errorf("chunk interval %v: Opus packets of %d ms go out every %d ms", c.ChunkInterval, c.PacketMs, c.PacketMs)
	case c.ListenerCodec != "" && c.ListenerCodec != protocol.CodecPCM16 && c.ListenerCodec != protocol.CodecOpus:
		return fmt.Errorf("listener codec %q: want pcm16 or opus", c.ListenerCodec)
	case c.converts():
		if err := c.checkConversion(); err != nil {
			return err
		}
	case c.ChunkBytes < 2:
		return errors.New("chunk-bytes must be at least 2 (one sample)")
	case c.ChunkInterval < time.Millisecond:
		return errors.New("chunk interval must be at least 1ms")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Warmup < 0 || c.Drain < 0 || c.Settle < 0 || c.JoinStorm < 0:
		return errors.New("durations must not be negative")
	case c.JoinConcurrency < 1:
		return errors.New("join concurrency must be at least 1")
	case c.Retries < 0:
		return errors.New("retries must not be negative")
	case c.Repeat < 0:
		return errors.New("repeat must not be negative")
	case c.StalledChunkBytes < 0 || c.StalledChunkBytes == 1:
		return errors.New("stalled-chunk-bytes must be 0 or at least 2")
	case c.Stalled < 0:
		return errors.New("stalled must not be negative")
	case !c.Pentecost && !c.Baseline:
		return errors.New("nothing to measure: neither Pentecost nor the baseline")
	case c.FindMax && c.Step < 1:
		return errors.New("find-max step must be at least 1")
	case c.URL == "" && !c.InProcess && len(c.ChildCommand) == 0:
		return errors.New("no server: set URL, InProcess or ChildCommand")
	}
	if c.URL != "" {
		if err := checkLoopback(c.URL); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopback refuses any target that is not this machine: the load tool
// must never be aimed at someone else's server.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "ws" {
		return fmt.Errorf("--url %q: want ws://127.0.0.1:PORT/ws (plain ws on loopback)", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--url %q: only loopback targets are allowed (127.0.0.1, ::1, localhost)", raw)
	}
	return nil
}

// Listens is the codec the listeners ask for.
func (c Config) Listens() string {
	if c.ListenerCodec == "" {
		return c.Codec
	}
	return c.ListenerCodec
}

// converts reports whether the server converts the speakers' codec for the
// listeners.
func (c Config) converts() bool { return c.Listens() != c.Codec }

// checkConversion: one speaker chunk must make exactly one listener packet
// or chunk, so that their numbers match and latency is measured per chunk.
func (c Config) checkConversion() error {
	d := time.Duration(c.PacketMs) * time.Millisecond
	switch {
	case !opus.Available:
		return fmt.Errorf("listener codec %s for %s speakers: the server converts only when built with Opus, and so must this binary be: %w", c.Listens(), c.Codec, opus.ErrUnavailable)
	case !slices.Contains(protocol.PacketDurations, c.PacketMs):
		return fmt.Errorf("packet-ms %d: a run with conversion needs 20, 40 or 60", c.PacketMs)
	case c.ChunkInterval != d || (c.Codec == protocol.CodecPCM16 && c.ChunkBytes != protocol.SampleRate*2*c.PacketMs/1000):
		return fmt.Errorf("a run with conversion sends one chunk of %d ms every %d ms (%d bytes of pcm16), so each converted packet keeps its chunk's number", c.PacketMs, c.PacketMs, protocol.SampleRate*2*c.PacketMs/1000)
	case c.Baseline:
		return errors.New("the baseline does not convert codecs: measure a run with conversion without --baseline")
	case c.JoinStorm > 0:
		return errors.New("a join storm with conversion: the server starts converting when the first listener joins, so the numbers would not match the chunks'; join first")
	}
	return nil
}
