package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/pentecost/pentecost/auth"
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
}

// clientEnv names the flags of clientFlags that the environment may set.
var clientEnv = []string{"server", "token", "data-dir"}

func (c *clientFlags) register(fs *flag.FlagSet, role, defaultSub string) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "server base URL (env PENTECOST_SERVER)")
	// The token's default is never the environment's value: help output
	// prints defaults, and tokens are not printed.
	fs.StringVar(&c.token, "token", "", role+" JWT (env PENTECOST_TOKEN); empty mints one from the built-in issuer's key in --data-dir")
	fs.StringVar(&c.dataDir, "data-dir", "./pentecost-data", "the server's data dir, for minting a token (env PENTECOST_DATA_DIR)")
	fs.StringVar(&c.sub, "sub", defaultSub, "identity of a minted token")
}

// mint signs a token from the built-in issuer's key in the data dir.
func (c *clientFlags) mint(processor bool) (string, error) {
	tok, err := auth.MintBuiltin(c.dataDir, c.sub, 12*time.Hour, processor)
	if err != nil {
		return "", fmt.Errorf("mint a token from %s (or pass --token): %w", c.dataDir, err)
	}
	return tok, nil
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
