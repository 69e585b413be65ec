// Command pentecost is the broadcast server and its command-line clients.
//
//	pentecost serve            run the server
//	pentecost token --sub NAME mint a speaker token from the built-in issuer
//	pentecost speak            stream a WAV file or raw PCM to a session
//	pentecost listen ID        hear a session and write it to a WAV file
//	pentecost processor        run the reference translation processor
//	pentecost bench            load-test a server
//	pentecost version          print the version
//	pentecost help COMMAND     a command's description, flags and environment
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// command is one subcommand: it parses its own flags from args and writes to
// stdout/stderr, so tests can run it in-process.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the broadcast server", runServe},
		{"token", "mint a speaker token from the built-in issuer", runToken},
		{"speak", "stream a WAV file or raw PCM (stdin) to a session", runSpeak},
		{"listen", "hear a session and write it to a WAV file or stdout", runListen},
		{"processor", "run the reference translation processor", runProcessor},
		{"bench", "load-test a server over loopback WebSockets (and a bare baseline)", runBench},
		{"version", "print the version and the source revision", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 2 && args[0] == "help" {
			// pentecost help serve is pentecost serve --help.
			return run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdin, stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			default:
				fmt.Fprintf(stderr, "pentecost %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "pentecost: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pentecost <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'pentecost help <command>' (or 'pentecost <command> --help') for its\ndescription, flags and environment variables.")
}

// runVersion prints the module version and the VCS revision the binary was
// built from, as the Go toolchain recorded them.
func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost version", "Prints the module version of this binary and the source revision it was built\nfrom (with \"(modified)\" when the tree had uncommitted changes).", nil)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build information in this binary")
	}
	fmt.Fprintln(stdout, versionLine(bi))
	return nil
}

func versionLine(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	setting := func(k string) string {
		for _, s := range bi.Settings {
			if s.Key == k {
				return s.Value
			}
		}
		return ""
	}
	line := fmt.Sprintf("pentecost %s %s", version, bi.GoVersion)
	if rev := setting("vcs.revision"); rev != "" {
		line += " revision " + rev
		if t := setting("vcs.time"); t != "" {
			line += " (" + t + ")"
		}
		if setting("vcs.modified") == "true" {
			line += " (modified)"
		}
	}
	return line
}
