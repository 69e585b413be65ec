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

// docs/processors.md must name every flag of `pentecost processor`.
func TestProcessorsDocListsEveryProcessorFlag(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "processors.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var c processorConfig
	fs := flag.NewFlagSet("processor", flag.ContinueOnError)
	c.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(doc, []byte("`--"+f.Name+"`")) && !bytes.Contains(doc, []byte("`--"+f.Name+" ")) {
			t.Errorf("%s does not document the flag `--%s` (%s)", path, f.Name, f.Usage)
		}
	})
	for _, env := range []string{envASRKey, envMTKey, envTTSKey} {
		if !bytes.Contains(doc, []byte("`"+env+"`")) {
			t.Errorf("%s does not document `%s`", path, env)
		}
	}
}
