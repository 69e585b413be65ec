// Command pentecost is the broadcast server and its command-line clients.
//
//	pentecost serve            run the server
//	pentecost token --sub NAME mint a speaker token from the built-in issuer
//	pentecost speak            stream a WAV file or raw PCM to a session
//	pentecost listen ID        hear a session and write it to a WAV file
//	pentecost processor        run the reference translation processor
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
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
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'pentecost <command> -h' for its flags.")
}
