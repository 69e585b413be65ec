package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/client/clienttest"
	"github.com/pentecost/pentecost/internal/wav"
)

func cliTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func cliFakeServer(t *testing.T) *clienttest.Server {
	srv := clienttest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// writeTestWAV writes a WAV file of n frames of a stereo ramp at rate.
func writeTestWAV(t *testing.T, path string, rate, frames int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := wav.NewWriter(f, rate, 2)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 0, frames*4)
	for i := range frames {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(i)))
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(i)))
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseSpeak(t *testing.T) {
	env := map[string]string{"PENTECOST_SERVER": "https://env.example", "PENTECOST_TOKEN": "env-secret-token", "PENTECOST_DATA_DIR": "/env/data"}
	c, err := parseSpeak(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.server != "https://env.example" || c.token != "env-secret-token" || c.dataDir != "/env/data" ||
		c.lang != "en" || c.tier != "standard" || c.chunk != 20*time.Millisecond || c.sub != "cli-speaker" || c.codec != "opus" || c.packetMs != 0 {
		t.Errorf("defaults %+v", c)
	}
	c, err = parseSpeak([]string{"--server", "http://flag", "--token", "t", "--session", "holy-dove-123", "--lang", "de", "--chunk", "40ms", "--file", "a.wav", "--loop", "--keep", "--codec", "PCM16", "--packet-ms", "40"},
		func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.server != "http://flag" || c.token != "t" || c.session != "holy-dove-123" || c.lang != "de" || c.chunk != 40*time.Millisecond || !c.loop || !c.keep || c.file != "a.wav" ||
		c.codec != "pcm16" || c.packetMs != 40 {
		t.Errorf("flags %+v", c)
	}

	var help bytes.Buffer
	if _, err := parseSpeak([]string{"-h"}, func(k string) string { return env[k] }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if strings.Contains(help.String(), "env-secret-token") || !strings.Contains(help.String(), "--chunk") && !strings.Contains(help.String(), "-chunk") {
		t.Errorf("help output:\n%s", help.String())
	}
	for _, bad := range [][]string{{"--chunk", "2s"}, {"--chunk", "0s"}, {"--loop"}, {"stray"}, {"--codec", "mp3"}, {"--packet-ms", "30"}} {
		if _, err := parseSpeak(bad, func(string) string { return "" }, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestChunkBytes(t *testing.T) {
	for d, want := range map[time.Duration]int{20 * time.Millisecond: 640, time.Millisecond: 32, 1024 * time.Millisecond: 32768, 100 * time.Millisecond: 3200} {
		if got, err := chunkBytes(d); err != nil || got != want {
			t.Errorf("chunkBytes(%v) = %d, %v; want %d", d, got, err, want)
		}
	}
}

func TestSpeakRawStdinMintsTokenAndEnds(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	t.Setenv("PENTECOST_TOKEN", "")
	pcm := bytes.Repeat([]byte{1, 0}, 500) // 1000 bytes: a 640-byte chunk and a 360-byte one
	var stdout, stderr bytes.Buffer
	err := runSpeak(ctx, []string{"--server", srv.URL, "--data-dir", serverDataDir(t), "--sub", "tester", "--codec", "pcm16"}, bytes.NewReader(pcm), &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "session golden-eagle-427\n") || !strings.Contains(out, "pentecost listen golden-eagle-427 --lang") {
		t.Errorf("stdout:\n%s", out)
	}
	chunks := srv.Chunks("golden-eagle-427")
	if len(chunks) != 2 || len(chunks[0]) != 640 || len(chunks[1]) != 360 {
		t.Errorf("server got %d chunks", len(chunks))
	}
	if !srv.Ended("golden-eagle-427") {
		t.Error("session not ended")
	}
	tokens := srv.Tokens()
	if len(tokens) == 0 || strings.Count(tokens[0], ".") != 2 {
		t.Fatalf("no minted JWT reached the server: %v", tokens)
	}
	if strings.Contains(out+stderr.String(), tokens[0]) {
		t.Error("the token was printed")
	}
}

func TestSpeakKeepLeavesSessionRunning(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	var stdout, stderr bytes.Buffer
	err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--keep", "--file", "-"}, bytes.NewReader(make([]byte, 64)), &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	if srv.Ended("golden-eagle-427") || !strings.Contains(stdout.String(), "--session golden-eagle-427") {
		t.Errorf("--keep ended the session; stdout:\n%s", stdout.String())
	}
}

func TestSpeakCancelEndsSession(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.wav")
	writeTestWAV(t, path, 16000, 1600)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- runSpeak(cctx, []string{"--server", srv.URL, "--token", "tok", "--file", path, "--loop"}, nil, &stdout, &stderr)
	}()
	// Ctrl-C once audio flows.
	if err := srv.WaitFor(ctx, func() bool { return len(srv.Chunks("golden-eagle-427")) >= 3 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	if !srv.Ended("golden-eagle-427") {
		t.Error("Ctrl-C left the session running")
	}
}

func TestSpeakAttachRefused(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--session", "holy-dove-999"}, bytes.NewReader(nil), &bytes.Buffer{}, &bytes.Buffer{})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != "SESSION_NOT_FOUND" {
		t.Fatalf("err %v", err)
	}
}

func TestSpeakBadFileFailsBeforeConnecting(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	path := filepath.Join(t.TempDir(), "x.wav")
	os.WriteFile(path, []byte("not a wav file at all"), 0o644)
	err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--file", path}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, wav.ErrNotWAV) {
		t.Errorf("err %v", err)
	}
	if srv.Count("create") != 0 {
		t.Error("connected despite a bad file")
	}
}

func TestListenerLine(t *testing.T) {
	ev := client.Event{Type: "sessionStatus", JSON: map[string]any{"listenerCount": 3.0, "languageDistribution": map[string]any{"es": 2.0, "en": 1.0}}}
	if got := listenerLine(ev); got != "listeners: 3 (en:1 es:2)" {
		t.Errorf("%q", got)
	}
	ev.JSON = map[string]any{"listenerCount": 0.0, "languageDistribution": map[string]any{}}
	if got := listenerLine(ev); got != "listeners: 0" {
		t.Errorf("%q", got)
	}
}
