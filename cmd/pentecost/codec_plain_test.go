//go:build !opus

package main

import (
	"bytes"
	"strings"
	"testing"
)

// A build without Opus cannot take part in an Opus session, and says why
// rather than sending or writing something nobody can play.
func TestOpusSessionWithoutOpus(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	srv.CreateSessionFormat("holy-dove-123", "en", "opus", 60)
	var stderr bytes.Buffer
	err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--session", "holy-dove-123"}, bytes.NewReader(tone(320)), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "takes Opus, which this command cannot encode") || !strings.Contains(err.Error(), "-tags opus,nolibopusfile") {
		t.Fatalf("speak: %v", err)
	}
	if n := len(srv.Chunks("holy-dove-123")); n != 0 {
		t.Fatalf("sent %d chunks", n)
	}
	err = runListen(ctx, []string{"holy-dove-123", "--lang", "es", "--server", srv.URL, "--out", "-"}, nil, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "it sends opus audio, which this command cannot decode") {
		t.Fatalf("listen: %v", err)
	}
}
