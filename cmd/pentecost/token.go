package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pentecost/pentecost/auth"
)

func runToken(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost token --sub NAME [--ttl 12h] [--processor] [--data-dir DIR]", `
Prints a token signed with the server's built-in issuer key (issuer-key.pem in
--data-dir, made by pentecost serve on its first start), for a server running
without --jwks-url and --jwt-secret. Run it where the server's data directory
is; it never creates a key. The token carries iss "pentecost", sub, iat, exp
and the key's kid.

Every flag can also be set by the environment variable shown under it; a flag
given on the command line wins.`, everyFlag)
	sub := fs.String("sub", "", "the speaker's identity (the token's sub claim)")
	dataDir := fs.String("data-dir", "./pentecost-data", "the server's data dir, holding the built-in signing key")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the token is valid")
	processor := fs.Bool("processor", false, "mint a processor token instead of a speaker token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("--sub is required")
	}
	tok, err := auth.MintBuiltin(*dataDir, *sub, *ttl, *processor)
	if errors.Is(err, auth.ErrNoKey) {
		return fmt.Errorf("no token signing key in %s: pass --data-dir with the data directory of the server (the folder holding %s; pentecost serve makes it on its first start)", *dataDir, auth.BuiltinKeyFile)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
