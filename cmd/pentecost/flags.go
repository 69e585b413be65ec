package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/client"
)

// envName maps a flag to its environment variable:
// --max-listeners-per-session is PENTECOST_MAX_LISTENERS_PER_SESSION.
func envName(flagName string) string {
	return "PENTECOST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets each flag not given on the command line from its
// environment variable (envName), so flags win over the environment. names
// limits it to those flags; none means every flag. A value that does not
// parse is an error naming the variable, never silently dropped.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool), names ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	wanted := map[string]bool{}
	for _, n := range names {
		wanted[n] = true
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || (len(names) > 0 && !wanted[f.Name]) {
			return
		}
		if v, ok := lookup(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// setUsage makes --help print the command's synopsis, what it does, and
// every flag with its default and, when env(name) holds, its environment
// variable. A nil env: no flag is read from the environment.
func setUsage(fs *flag.FlagSet, synopsis, about string, env func(name string) bool) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, strings.TrimSpace(about))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return
		}
		fmt.Fprintln(w, "\nflags:")
		fs.VisitAll(func(f *flag.Flag) {
			typ, text := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if typ != "" {
				line += " " + typ
			}
			fmt.Fprintln(w, line)
			fmt.Fprintf(w, "        %s", text)
			switch f.DefValue {
			case "", "0", "false", "0s":
			default:
				if typ == "string" {
					fmt.Fprintf(w, " (default %q)", f.DefValue)
				} else {
					fmt.Fprintf(w, " (default %s)", f.DefValue)
				}
			}
			fmt.Fprintln(w)
			if env != nil && env(f.Name) {
				fmt.Fprintf(w, "        environment: %s\n", envName(f.Name))
			}
		})
	}
}

// everyFlag reads every flag from the environment.
func everyFlag(string) bool { return true }

// only reads the named flags from the environment.
func only(names ...string) func(string) bool {
	return func(n string) bool { return slices.Contains(names, n) }
}

// lookupNonEmpty turns a getenv into a lookup that treats an empty variable
// as unset, as the client commands always have.
func lookupNonEmpty(getenv func(string) string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
}

// clientFlags are the connection flags of the commands that connect to a
// server with a token (speak, processor).
type clientFlags struct {
	server, token, dataDir, sub string
	minted                      bool // the token was minted from dataDir's key
}

// clientEnv names the flags of clientFlags that the environment may set.
var clientEnv = []string{"server", "token", "data-dir"}

func (c *clientFlags) register(fs *flag.FlagSet, role, defaultSub string) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "server base URL")
	// The token's default is never the environment's value: help output
	// prints defaults, and tokens are not printed.
	fs.StringVar(&c.token, "token", "", role+" JWT; empty mints one with the built-in issuer's key in --data-dir")
	fs.StringVar(&c.dataDir, "data-dir", "./pentecost-data", "the server's data dir, whose key mints a token when --token is empty")
	fs.StringVar(&c.sub, "sub", defaultSub, "identity of a minted token")
}

// mint signs a token with the built-in issuer's key in the data dir. It
// never creates a key: a token signed with any key but the server's would be
// refused anyway.
func (c *clientFlags) mint(processor bool) (string, error) {
	tok, err := auth.MintBuiltin(c.dataDir, c.sub, 12*time.Hour, processor)
	if errors.Is(err, auth.ErrNoKey) {
		return "", fmt.Errorf("no token signing key in %s: %w", c.dataDir, errNoKeyHint)
	}
	if err != nil {
		return "", fmt.Errorf("mint a token from %s (or pass --token): %w", c.dataDir, err)
	}
	c.minted = true
	return tok, nil
}

// errNoKeyHint says what to do when the folder holds no key, or not the
// server's.
var errNoKeyHint = errors.New("pass --data-dir with the data directory of the server (the folder holding " +
	auth.BuiltinKeyFile + "), or --token with a token (pentecost token --sub NAME, run where the server's data is)")

// explain adds what to do when the server does not know the key a minted
// token was signed with: the command ran with another folder's key.
func (c *clientFlags) explain(err error) error {
	var se *client.ServerError
	if c.minted && errors.As(err, &se) && se.Code == pentecost.ErrUnauthorized && se.Message == "token signing key is unknown" {
		return fmt.Errorf("%w: the key in %s is not the server's: %w", err, c.dataDir, errNoKeyHint)
	}
	return err
}

// listFlag is a repeatable flag whose values may also be comma-separated
// (so its environment variable can hold several): --acme-domain a,b
// --acme-domain c is [a b c].
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
