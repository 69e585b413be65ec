package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/server"
)

func TestParseProcessor(t *testing.T) {
	env := map[string]string{"PENTECOST_SERVER": "https://env.example", "PENTECOST_TOKEN": "env-secret-token", "PENTECOST_DATA_DIR": "/env/data"}
	getenv := func(k string) string { return env[k] }
	c, err := parseProcessor(nil, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.server != "https://env.example" || c.token != "env-secret-token" || c.dataDir != "/env/data" ||
		c.sub != "reference-processor" || c.mode != "tone" || c.languages != "" {
		t.Errorf("defaults %+v", c)
	}
	if _, ok := c.translator().(*processor.Tone); !ok {
		t.Errorf("tone mode translator %T", c.translator())
	}
	c, err = parseProcessor([]string{"--exec", "cat", "--languages", "es,fr", "--server", "http://flag"}, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if x, ok := c.translator().(*processor.Exec); c.mode != "exec" || !ok || x.Command != "cat" || c.server != "http://flag" {
		t.Errorf("--exec: %+v %T", c, c.translator())
	}
	if got := splitLanguages(" es, fr ,"); strings.Join(got, "|") != "es|fr" {
		t.Errorf("languages %q", got)
	}
	c, _ = parseProcessor([]string{"--mode", "passthrough"}, getenv, &bytes.Buffer{})
	if _, ok := c.translator().(processor.Passthrough); !ok {
		t.Errorf("passthrough translator %T", c.translator())
	}
	c, _ = parseProcessor([]string{"--captions-only"}, getenv, &bytes.Buffer{})
	if !c.captionsOnly || c.audioLanguages != "" {
		t.Errorf("--captions-only: %+v", c)
	}
	c, _ = parseProcessor([]string{"--languages", "es,fr", "--audio-languages", "es"}, getenv, &bytes.Buffer{})
	if c.captionsOnly || c.audioLanguages != "es" {
		t.Errorf("--audio-languages: %+v", c)
	}
	// The transcript: on in speech mode unless turned off, off elsewhere
	// unless asked for; tone and passthrough have none to give.
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--exec", "cat"}, false},
		{[]string{"--exec", "cat", "--transcript"}, true},
		{[]string{"--mode", "speech"}, true},
		{[]string{"--mode", "speech", "--transcript=false"}, false},
		{[]string{"--mode", "passthrough", "--transcript=false"}, false},
	} {
		c, err := parseProcessor(tc.args, getenv, &bytes.Buffer{})
		if err != nil || c.transcript != tc.want {
			t.Errorf("%v: transcript %v (%v), want %v", tc.args, c.transcript, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"--mode", "exec"}, {"--mode", "karaoke"}, {"--mode", "tone", "--exec", "cat"}, {"extra"},
		{"--captions-only", "--audio-languages", "es"}, {"--transcript"}, {"--mode", "passthrough", "--transcript"}} {
		if _, err := parseProcessor(bad, getenv, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	var help bytes.Buffer
	if _, err := parseProcessor([]string{"-h"}, getenv, &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if strings.Contains(help.String(), "env-secret-token") || !strings.Contains(help.String(), "sox") {
		t.Errorf("help output:\n%s", help.String())
	}
}

// syncBuffer is a bytes.Buffer safe to write from the command's goroutines
// and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// processorRun is `pentecost processor` with args running against a real
// node on the built-in issuer, and a speaker who has created a session. The
// node's fake clock starts a little after the real one, so the token the
// command mints on the real clock is not from the future.
type processorRun struct {
	t       *testing.T
	node    *testserver.Node
	stderr  *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	speaker *client.Conn
	token   string // the speaker's
	sid     string
}

func startProcessorRun(t *testing.T, args ...string) *processorRun {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.ShutdownGrace = 200 * time.Millisecond
	cfg.SweepInterval = 0
	cfg.AudioMaxChunksPerSec = 100000 // speakSentence sends faster than real time
	n := testserver.StartConfig(t, cfg, clockwork.NewFakeClockAt(time.Now().Add(time.Minute)))
	ctx, cancel := context.WithCancel(cliTestCtx(t))
	r := &processorRun{t: t, node: n, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), token: n.Token("alice")}
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("stderr:\n%s", r.stderr.String())
		}
	})
	go func() {
		r.done <- runProcessor(ctx, append([]string{"--server", n.URL, "--data-dir", n.Config.DataDir}, args...), nil, &bytes.Buffer{}, r.stderr)
	}()
	sp, err := client.Dial(cliTestCtx(t), n.WS("action=createSession&sourceLanguage=en&token="+url.QueryEscape(r.token)), client.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.CloseNow() })
	ev, err := sp.Expect(cliTestCtx(t), "sessionCreated")
	if err != nil {
		t.Fatal(err)
	}
	r.speaker, r.sid = sp, ev.String("sessionId")
	return r
}

// waitLog waits until the command's stderr says s.
func (r *processorRun) waitLog(s string) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.stderr.String(), s); {
		if time.Now().After(deadline) {
			r.t.Fatalf("the processor's log never said %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen joins a listener for lang and returns it with its sessionJoined.
func (r *processorRun) listen(lang string) (*client.Conn, client.Event) {
	r.t.Helper()
	li, err := client.Dial(cliTestCtx(r.t), r.node.WS("sessionId="+r.sid+"&targetLanguage="+lang), client.DialOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { li.CloseNow() })
	joined, err := li.Expect(cliTestCtx(r.t), "sessionJoined")
	if err != nil {
		r.t.Fatal(err)
	}
	return li, joined
}

// stop cancels the command and returns its stderr once it has returned
// without error.
func (r *processorRun) stop() string {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("runProcessor: %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatal("runProcessor did not stop")
	}
	return r.stderr.String()
}

// awaitTranslated returns once the listener is told its language is
// translated: it may have joined before the processor attached, and then
// hears the source until a languageChanged.
func awaitTranslated(t *testing.T, li *client.Conn, joined client.Event) {
	t.Helper()
	if !joined.Bool("translated") {
		if _, err := li.Expect(cliTestCtx(t), "languageChanged"); err != nil {
			t.Fatal(err)
		}
	}
}

// The command against a real node with the built-in issuer: it mints its
// own processor token from the node's data dir, and a Spanish listener
// hears its tone.
func TestRunProcessorTone(t *testing.T) {
	r := startProcessorRun(t, "--languages", "es")
	li, joined := r.listen("es")
	awaitTranslated(t, li, joined)

	want := make([]byte, 640)
	(&processor.ToneGenerator{Freq: 440, Amplitude: 0.25}).Fill(want)
	var got *client.AudioFrame
	for got == nil {
		if err := r.speaker.SendBinary(cliTestCtx(t), make([]byte, 640)); err != nil {
			t.Fatal(err)
		}
		ev, err := li.Next(cliTestCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Audio != nil && ev.Audio.Header.Kind == 1 {
			got = ev.Audio
		}
	}
	if !bytes.Equal(got.Chunk, want) {
		t.Fatalf("translated chunk of %d bytes is not the 440 Hz tone", len(got.Chunk))
	}

	out := r.stop()
	for _, s := range []string{"mode tone, languages es", "attached to", "session " + r.sid + " started", "languages assigned", "starting es worker", "es worker: stopped"} {
		if !strings.Contains(out, s) {
			t.Errorf("stderr lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "eyJ") || strings.Contains(out, r.token) {
		t.Errorf("stderr shows a token:\n%s", out)
	}
}

// A token the server refuses ends the command with the server's reason.
func TestRunProcessorRefused(t *testing.T) {
	n := testserver.Start(t, nil)
	var stderr syncBuffer
	err := runProcessor(cliTestCtx(t), []string{"--server", n.URL, "--token", n.Token("speaker-not-processor")}, nil, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Fatalf("runProcessor with a speaker token: %v", err)
	}
	if strings.Contains(stderr.String(), "eyJ") {
		t.Errorf("stderr shows a token:\n%s", stderr.String())
	}
}
