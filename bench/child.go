package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/pentecost/pentecost/bench/internal/baseline"
)

// Server is what a server child runs: Serve until Shutdown.
type Server interface {
	Serve(l net.Listener) error
}

// RunChild is the body of a server child process: it listens on addr,
// prints ChildReady on stdout, serves until ctx ends (the parent sends
// SIGTERM), then calls shutdown. With ProfileDirEnv set, SIGUSR1 starts a
// CPU profile and SIGUSR2 stops it and writes a heap profile.
func RunChild(ctx context.Context, addr string, srv Server, shutdown func(context.Context) error, stdout, stderr io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if dir := os.Getenv(ProfileDirEnv); dir != "" {
		go profileOnSignal(ctx, dir, os.Getenv("PENTECOST_BENCH_PROFILE_NAME"), stderr)
	}
	fmt.Fprintln(stdout, ChildReady(l.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return shutdown(sctx)
}

func profileOnSignal(ctx context.Context, dir, name string, stderr io.Writer) {
	if name == "" {
		name = "server"
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)
	var cpu *os.File
	for {
		select {
		case <-ctx.Done():
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			return
		case s := <-sig:
			switch {
			case s == syscall.SIGUSR1 && cpu == nil:
				f, err := os.Create(filepath.Join(dir, "cpu-"+name+".pprof"))
				if err != nil {
					fmt.Fprintln(stderr, "bench child: cpu profile:", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintln(stderr, "bench child: cpu profile:", err)
					f.Close()
					continue
				}
				cpu = f
			case s == syscall.SIGUSR2 && cpu != nil:
				pprof.StopCPUProfile()
				cpu.Close()
				cpu = nil
				if f, err := os.Create(filepath.Join(dir, "heap-"+name+".pprof")); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}
}

// RunBaselineChild is the baseline server child: flags --addr and
// --queue-len.
func RunBaselineChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench baseline server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	qlen := fs.Int("queue-len", 128, "frames queued per listener before the oldest is dropped")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b := baseline.New(baseline.Options{QueueLen: *qlen})
	return RunChild(ctx, *addr, b, func(context.Context) error { return b.Close() }, stdout, stderr)
}
