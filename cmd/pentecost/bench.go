package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pentecost/pentecost/bench"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/server"
)

// benchChildArg is the hidden first argument of a server child that
// `pentecost bench` starts: `pentecost bench internal-server KIND FLAGS...`.
const benchChildArg = "internal-server"

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == benchChildArg {
		return runBenchChild(ctx, args[1:], stdout, stderr)
	}
	cfg := bench.Defaults()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost bench [flags]", `
Drives real sessions over real WebSockets on loopback and reports delivered
frames/s, latency (speaker send to listener receive), loss, drops, join
latency, and the server's CPU and memory per connection. By default it starts
the server as a child process on 127.0.0.1; --baseline also measures a bare
fan-out server on the same workload and reports Pentecost's ratios to it.
It reads no environment variables.`, nil)
	fs.IntVar(&cfg.Speakers, "speakers", cfg.Speakers, "S: speakers, one session each")
	fs.IntVar(&cfg.Listeners, "listeners", cfg.Listeners, "L: listeners per session (find-max: the first step)")
	fs.IntVar(&cfg.Languages, "languages", cfg.Languages, "K: target languages the listeners are spread over")
	fs.StringVar(&cfg.Codec, "codec", cfg.Codec, "what speakers send and listeners ask for: pcm16, or opus (real packets, encoded at start-up; needs a binary built with Opus)")
	fs.StringVar(&cfg.ListenerCodec, "listener-codec", "", "what listeners ask for when it is not --codec: the server converts, once per session (needs --packet-ms and a binary built with Opus)")
	fs.IntVar(&cfg.PacketMs, "packet-ms", 0, "packet duration, 20, 40 or 60 ms: the sessions' packetMs, and the chunk interval (pcm16: 32 bytes per ms unless --chunk-bytes); 0: the server default (40) for opus, --chunk-interval for pcm16")
	fs.IntVar(&cfg.ChunkBytes, "chunk-bytes", cfg.ChunkBytes, "bytes per pcm16 chunk")
	fs.DurationVar(&cfg.ChunkInterval, "chunk-interval", cfg.ChunkInterval, "one chunk per speaker every this long (20ms = 50 chunks/s)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measurement window")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "audio flows this long before the window opens")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "after the window, how long in-flight chunks may still arrive")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "quiet time after the joins before the idle memory reading")
	fs.DurationVar(&cfg.JoinStorm, "join-storm", cfg.JoinStorm, "listeners join spread evenly over this while audio flows (0: join first, as fast as --join-concurrency allows)")
	fs.IntVar(&cfg.JoinConcurrency, "join-concurrency", cfg.JoinConcurrency, "joins in flight at once outside a storm")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "a join slower than this counts as failed")
	fs.IntVar(&cfg.Stalled, "stalled", cfg.Stalled, "extra listeners that join and then never read")
	fs.IntVar(&cfg.StalledChunkBytes, "stalled-chunk-bytes", 0, "put the stalled listeners in their own session fed chunks this large (e.g. 32768), so their backlog reaches the server's queue within the run; 0: they join the measured sessions")
	fs.StringVar(&cfg.URL, "url", "", "measure a running server at this loopback ws:// URL instead of starting one")
	fs.StringVar(&cfg.Token, "token", "", "speaker token for --url")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "PID of the --url server, to read its CPU and memory")
	fs.BoolVar(&cfg.InProcess, "in-process", false, "run the servers inside this process (server CPU and memory are then not reported)")
	baselineToo := fs.Bool("baseline", false, "also measure the bare fan-out baseline and report ratios")
	baselineOnly := fs.Bool("baseline-only", false, "measure only the baseline")
	fs.Var((*stringList)(&cfg.ServerArgs), "server-arg", "extra flag for the Pentecost server child (repeatable), e.g. --server-arg=--listener-queue-chunks=64")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "runs per server, alternating Pentecost and the baseline; the run with the median p99 is reported")
	fs.BoolVar(&cfg.FindMax, "find-max", false, "raise listeners per session by --step until p99 > --max-p99, a frame is lost or dropped, or a join fails")
	fs.DurationVar(&cfg.MaxP99, "max-p99", cfg.MaxP99, "find-max latency bound")
	fs.IntVar(&cfg.Step, "step", cfg.Step, "find-max step, listeners per session")
	fs.IntVar(&cfg.Retries, "retries", 0, "find-max: rerun a failed step up to this many times; any passing run passes it (noise only hurts)")
	fs.IntVar(&cfg.MaxListeners, "max-listeners", cfg.MaxListeners, "find-max ceiling, listeners per session")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write each server child's CPU profile of the window and heap profile at its end here")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the whole invocation")
	genProfile := fs.String("generator-cpuprofile", "", "write a CPU profile of the load generator itself to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON (durations in ms) instead of a table")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The same parser as speak's, listen's and the server's, so that
	// --codec OPUS means here what it means there.
	for _, c := range []struct {
		flag string
		v    *string
	}{{"codec", &cfg.Codec}, {"listener-codec", &cfg.ListenerCodec}} {
		codec, err := protocol.ParseCodec(c.flag, *c.v, "")
		if err != nil {
			return fmt.Errorf("--%s %q: want pcm16 or opus", c.flag, *c.v)
		}
		*c.v = codec
	}
	if err := applyPacketMs(fs, &cfg); err != nil {
		return err
	}
	cfg.Baseline = *baselineToo || *baselineOnly
	cfg.Pentecost = !*baselineOnly
	if !cfg.InProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own binary to start the server child: %w", err)
		}
		cfg.ChildCommand = []string{exe, "bench", benchChildArg}
	}
	if !*quiet {
		cfg.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				cfg.ProgressInPlace = true
			}
		}
	}
	if *genProfile != "" {
		f, err := os.Create(*genProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		if res != nil && (res.Pentecost != nil || res.Baseline != nil || res.MaxPentecost != nil) {
			_ = output(res, *asJSON, stdout)
		}
		return err
	}
	return output(res, *asJSON, stdout)
}

// applyPacketMs makes --packet-ms the chunk interval (and, for pcm16, the
// chunk size) unless those were given, and gives Opus its default.
func applyPacketMs(fs *flag.FlagSet, cfg *bench.Config) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if cfg.Codec == protocol.CodecOpus && cfg.PacketMs == 0 {
		cfg.PacketMs = protocol.DefaultPacketMs
	}
	if cfg.PacketMs == 0 {
		return nil
	}
	if _, err := protocol.CheckPacketMs(cfg.PacketMs); err != nil {
		return fmt.Errorf("--packet-ms %d: want 20, 40 or 60", cfg.PacketMs)
	}
	d := time.Duration(cfg.PacketMs) * time.Millisecond
	if given["chunk-interval"] && cfg.ChunkInterval != d {
		return fmt.Errorf("--chunk-interval %v contradicts --packet-ms %d", cfg.ChunkInterval, cfg.PacketMs)
	}
	cfg.ChunkInterval = d
	if cfg.Codec == protocol.CodecPCM16 && !given["chunk-bytes"] {
		cfg.ChunkBytes = protocol.SampleRate * 2 * cfg.PacketMs / 1000
	}
	return nil
}

func output(res *bench.Result, asJSON bool, w io.Writer) error {
	if asJSON {
		return res.WriteJSON(w)
	}
	return res.WriteTable(w)
}

// runBenchChild is a server child of `pentecost bench`: `pentecost` takes
// serve's flags; `baseline` takes --addr and --queue-len.
func runBenchChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("internal-server: want pentecost or baseline")
	}
	switch args[0] {
	case bench.KindBaseline:
		return bench.RunBaselineChild(ctx, args[1:], stdout, stderr)
	case bench.KindPentecost:
		cfg := server.Defaults()
		fs := flag.NewFlagSet("bench pentecost server", flag.ContinueOnError)
		fs.SetOutput(stderr)
		serveFlags(fs, &cfg)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		srv, err := server.New(ctx, cfg, server.Options{Logger: log})
		if err != nil {
			return err
		}
		return bench.RunChild(ctx, cfg.Addr, srv, srv.Shutdown, stdout, stderr)
	}
	return fmt.Errorf("internal-server: unknown kind %q", args[0])
}
