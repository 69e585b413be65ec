package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pentecost/pentecost/server"
)

// docs/configuration.md must name every flag of `pentecost serve` and its
// environment variable, so the documentation cannot fall behind the code.
func TestConfigurationDocListsEveryServeFlag(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	cfg := server.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !bytes.Contains(doc, []byte("`--"+f.Name+"`")) {
			t.Errorf("%s does not document the flag `--%s` (%s)", path, f.Name, f.Usage)
		}
		if !bytes.Contains(doc, []byte("`"+envName(f.Name)+"`")) {
			t.Errorf("%s does not document the environment variable `%s`", path, envName(f.Name))
		}
	})
	if n == 0 {
		t.Fatal("serveFlags defined no flags")
	}
}
