package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// serverDataDir is a data directory as a server leaves it: with its
// built-in issuer key.
func serverDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.New(t.Context(), auth.Config{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func noKeyIn(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, auth.BuiltinKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a client command created a signing key in %s (%v)", dir, err)
	}
}

// speak run from a folder that is not the server's data directory says
// what to do, and creates no key there.
func TestSpeakWithoutKeySaysWhatToDo(t *testing.T) {
	t.Setenv("PENTECOST_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "pentecost-data")
	var stderr bytes.Buffer
	err := runSpeak(cliTestCtx(t), []string{"--server", "http://127.0.0.1:1", "--data-dir", dir}, bytes.NewReader(nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no token signing key in "+dir) ||
		!strings.Contains(err.Error(), "--data-dir") || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("speak without a key: %v", err)
	}
	noKeyIn(t, dir)
	if err := runToken(context.Background(), []string{"--sub", "pastor", "--data-dir", dir}, nil, &bytes.Buffer{}, &stderr); err == nil ||
		!strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("token without a key: %v", err)
	}
	noKeyIn(t, dir)
}

// speak with another folder's key reaches the server, which does not know
// the key: the error says why and what to do.
func TestSpeakWithAnotherKeySaysWhatToDo(t *testing.T) {
	t.Setenv("PENTECOST_TOKEN", "")
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir() // builtin issuer: no secret, no JWKS
	cfg.SweepInterval = 0
	// Tokens minted by the command carry the wall clock's time.
	n := testserver.StartConfig(t, cfg, clockwork.NewFakeClockAt(time.Now()))
	err := runSpeak(cliTestCtx(t), []string{"--server", n.URL, "--data-dir", serverDataDir(t)}, bytes.NewReader(nil), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "token signing key is unknown") ||
		!strings.Contains(err.Error(), "is not the server's") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("speak with another key: %v", err)
	}
	// With the server's own folder it works.
	var stdout bytes.Buffer
	if err := runSpeak(cliTestCtx(t), []string{"--server", n.URL, "--data-dir", n.Config.DataDir}, bytes.NewReader(make([]byte, 640)), &stdout, &bytes.Buffer{}); err != nil {
		t.Fatalf("speak with the server's data dir: %v", err)
	}
}

// Every command describes itself, its flags and the environment variables
// it reads; `pentecost help X` is `pentecost X --help`.
func TestHelp(t *testing.T) {
	env := map[string][]string{
		"serve":     {"PENTECOST_ADDR", "PENTECOST_DATA_DIR", "PENTECOST_SLOW_LISTENER_TIMEOUT", "PENTECOST_JWT_ALLOW_NO_EXP"},
		"token":     {"PENTECOST_SUB", "PENTECOST_DATA_DIR", "PENTECOST_TTL", "PENTECOST_PROCESSOR"},
		"speak":     {"PENTECOST_SERVER", "PENTECOST_TOKEN", "PENTECOST_DATA_DIR"},
		"processor": {"PENTECOST_SERVER", "PENTECOST_TOKEN", "PENTECOST_DATA_DIR"},
		"listen":    {"PENTECOST_SERVER"},
		"bench":     nil,
		"version":   nil,
	}
	for _, c := range commands() {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}} {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, nil, &stdout, &stderr); code != 0 {
				t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
			}
			out := stderr.String()
			want, ok := env[c.name]
			if !ok {
				t.Fatalf("no expectations for the command %q", c.name)
			}
			// The synopsis, then a description of at least a sentence
			// before any flag.
			head, _, _ := strings.Cut(out, "\nflags:")
			if !strings.HasPrefix(out, "usage: pentecost "+c.name) || len(head) < 120 {
				t.Errorf("%v prints no description:\n%s", args, out)
			}
			for _, v := range want {
				if !strings.Contains(out, "environment: "+v+"\n") {
					t.Errorf("%v does not name %s:\n%s", args, v, out)
				}
			}
			if want == nil && strings.Contains(out, "environment: ") {
				t.Errorf("%v names environment variables it does not read:\n%s", args, out)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &stdout, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(stdout.String(), "pentecost ") {
		t.Fatalf("version: exit %d, %q", code, stdout.String())
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "a49afb08588a16d41da9fc98b22ac5be83fae592"},
		{Key: "vcs.time", Value: "2026-12-06T22:30:28Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := versionLine(bi), "pentecost v1.4.0 go1.26.8 revision a49afb08588a16d41da9fc98b22ac5be83fae592 (2026-12-06T22:30:28Z) (modified)"; got != want {
		t.Fatalf("version line %q, want %q", got, want)
	}
}
