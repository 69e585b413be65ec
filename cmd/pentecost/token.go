package main

import (
	"context"
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
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
