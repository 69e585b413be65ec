package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

func TestParseListen(t *testing.T) {
	env := func(k string) string {
		if k == "PENTECOST_SERVER" {
			return "http://env:1"
		}
		return ""
	}
	for _, args := range [][]string{
		{"holy-dove-123", "--lang", "es"},
		{"--lang", "es", "holy-dove-123"},
		{"--lang", "es", "holy-dove-123", "--raw"},
	} {
		c, err := parseListen(args, env, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if c.session != "holy-dove-123" || c.lang != "es" || c.server != "http://env:1" || c.encoding != "binary" || c.codec != "opus" {
			t.Errorf("%v: %+v", args, c)
		}
		if want := "holy-dove-123-es.wav"; !c.raw && c.out != want {
			t.Errorf("%v: out %q", args, c.out)
		}
	}
	c, _ := parseListen([]string{"holy-dove-123", "--lang", "fr", "--out", "-", "--server", "http://x", "--duration", "5s"}, env, &bytes.Buffer{})
	if c.out != "-" || c.server != "http://x" || c.duration.Seconds() != 5 {
		t.Errorf("%+v", c)
	}
	if c, err := parseListen([]string{"a", "--lang", "es", "--codec", " OPUS"}, env, &bytes.Buffer{}); err != nil || c.codec != "opus" {
		t.Errorf("--codec OPUS: codec %q, error %v; want opus, as speak takes it", c.codec, err)
	}
	for _, bad := range [][]string{{"--lang", "es"}, {"holy-dove-123"}, {"a", "--lang", "es", "b"}, {"a", "--lang", "es", "--encoding", "hex"}, {"a", "--lang", "es", "--codec", "mp3"}} {
		if _, err := parseListen(bad, env, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// scriptedEvents is an eventSource that plays back events, then ErrSessionEnded.
type scriptedEvents struct{ evs []client.Event }

func (s *scriptedEvents) Next(context.Context) (client.Event, error) {
	if len(s.evs) == 0 {
		return client.Event{}, client.ErrSessionEnded
	}
	ev := s.evs[0]
	s.evs = s.evs[1:]
	return ev, nil
}

func audioEvent(seq uint32, kind byte, b ...byte) client.Event {
	f := &client.AudioFrame{Chunk: b}
	f.Header.Version, f.Header.Kind, f.Header.Sequence = 1, kind, seq
	return client.Event{Audio: f}
}

func msgEvent(typ string, kv ...any) client.Event {
	m := map[string]any{"type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return client.Event{Type: typ, JSON: m}
}

func TestReceive(t *testing.T) {
	src := &scriptedEvents{evs: []client.Event{
		audioEvent(10, 0, 1),
		audioEvent(11, 0, 2),
		audioEvent(11, 0, 2), // the refresh overlap
		msgEvent("speakerDisconnected", "graceSeconds", 60.0),
		msgEvent("speakerReconnected"),
		audioEvent(14, 0, 3),
		audioEvent(12, 0, 9), // late: dropped
		msgEvent("broadcastPaused"),
		audioEvent(0, 1, 4), // a processor took over: a new stream
		audioEvent(1, 1, 5),
		msgEvent("sessionEnded", "reason", "speakerEnded"),
		audioEvent(2, 1, 6), // never read
	}}
	var sink, log bytes.Buffer
	dec, _ := client.NewDecoder(protocol.CodecPCM16)
	st, err := receiveAudio(context.Background(), src, dec, &sink, &log)
	if err != nil {
		t.Fatal(err)
	}
	if sink.String() != "\x01\x02\x03\x04\x05" {
		t.Errorf("sink % x", sink.Bytes())
	}
	for _, want := range []string{
		"gap: 2 chunks missing (seq 12..13)", "speaker disconnected (the session waits 60 s", "speaker reconnected",
		"broadcast paused", "hearing translated audio", "session ended (speakerEnded)",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	g := st.gaps
	if g.Received != 5 || g.Duplicates != 1 || g.Late != 1 || g.Gaps != 1 || g.Missing != 2 || st.pcm != 5 || st.received != 5 {
		t.Errorf("stats %+v, %d bytes received, %d written", g, st.received, st.pcm)
	}
	if s := st.summary(); !strings.Contains(s, "received 5 chunks") || !strings.Contains(s, "1 duplicates") {
		t.Errorf("summary %q", s)
	}
}

// outputBuffer is a bytes.Buffer safe to read while runListen writes it,
// with a way to wait for output.
type outputBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func newOutputBuffer() *outputBuffer { return &outputBuffer{written: make(chan struct{})} }

func (l *outputBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.written)
	l.written = make(chan struct{})
	return l.b.Write(p)
}

func (l *outputBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// waitLen waits until at least n bytes have been written.
func (l *outputBuffer) waitLen(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		have, ch := l.b.Len(), l.written
		l.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestSpeakToListenEndToEnd(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav")
	writeTestWAV(t, in, 44100, 8820) // 0.2 s of stereo 44.1 kHz

	var lerr bytes.Buffer
	listened := make(chan error, 1)
	go func() {
		listened <- runListen(ctx, []string{"holy-dove-123", "--lang", "es", "--server", srv.URL, "--out", out}, nil, io.Discard, &lerr)
	}()
	if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 1 }); err != nil {
		t.Fatal(err)
	}
	var sout, serr bytes.Buffer
	if err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--session", "holy-dove-123", "--file", in}, nil, &sout, &serr); err != nil {
		t.Fatalf("speak: %v\n%s", err, serr.String())
	}
	if err := <-listened; err != nil {
		t.Fatalf("listen: %v\n%s", err, lerr.String())
	}
	if !strings.Contains(sout.String(), "listeners: 1 (es:1)") {
		t.Errorf("speaker stdout:\n%s", sout.String())
	}
	for _, want := range []string{"joined holy-dove-123 (es): 1 listeners", "session ended (speakerEnded)", "received 10 chunks (0.2 s of audio, 6.4 kB), 0 gaps"} {
		if !strings.Contains(lerr.String(), want) {
			t.Errorf("listener stderr lacks %q:\n%s", want, lerr.String())
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := wav.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != (wav.Format{SampleRate: 16000, Channels: 1, BitsPerSample: 16}) || r.DataSize != 6400 {
		t.Errorf("wrote %+v with %d bytes; want 16 kHz mono, 6400 bytes", r.Format, r.DataSize)
	}
}

func TestListenToStdout(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	for _, raw := range []bool{false, true} {
		stdout := newOutputBuffer()
		args := []string{"--lang", "en", "holy-dove-123", "--server", srv.URL, "--out", "-", "--encoding", "base64"}
		if raw {
			args = append(args, "--raw")
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runListen(lctx, args, nil, stdout, io.Discard) }()
		if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 1 }); err != nil {
			t.Fatal(err)
		}
		srv.Inject("holy-dove-123", []byte{7, 0, 8, 0})
		// Ctrl-C once the chunk is out.
		want := 4
		if !raw {
			want += 44
		}
		if err := stdout.waitLen(ctx, want); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		b := stdout.Bytes()
		if raw {
			if string(b) != "\x07\x00\x08\x00" {
				t.Errorf("raw stdout % x", b)
			}
		} else if string(b[:4]) != "RIFF" || binary.LittleEndian.Uint32(b[40:44]) != 0xFFFFFFFF || string(b[44:]) != "\x07\x00\x08\x00" {
			t.Errorf("WAV stdout % x", b)
		}
		if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 0 }); err != nil {
			t.Fatal(err)
		}
	}
}

// The listener's lines say what a language gets: translated audio,
// captions only over the source, or the source alone.
func TestListenLinesSayTheService(t *testing.T) {
	ev := func(typ string, kv map[string]any) client.Event {
		m := map[string]any{"type": typ, "sessionId": "golden-eagle-427", "sourceLanguage": "en", "targetLanguage": "es", "listenerCount": 1.0}
		for k, v := range kv {
			m[k] = v
		}
		return client.Event{Type: typ, JSON: m}
	}
	for _, tc := range []struct {
		got, want string
	}{
		{joinedLine(ev("sessionJoined", map[string]any{"translated": true, "captions": true})), "joined golden-eagle-427 (es): 1 listeners, translated"},
		{joinedLine(ev("sessionJoined", map[string]any{"translated": false, "captions": true})), "joined golden-eagle-427 (es): 1 listeners, captions only: hearing the source audio (en), with translated captions"},
		{joinedLine(ev("sessionJoined", map[string]any{"translated": false})), "joined golden-eagle-427 (es): 1 listeners, untranslated for now: hearing the source audio (en)"},
		{statusLine(ev("languageChanged", map[string]any{"translated": false, "captions": true})), "language changed to es, captions only (source audio)"},
		{statusLine(ev("languageChanged", map[string]any{"translated": false, "captions": false})), "language changed to es, untranslated (source audio)"},
		{statusLine(ev("languageChanged", map[string]any{"translated": true, "captions": true})), "language changed to es, translated"},
		{joinedLine(ev("sessionJoined", map[string]any{"targetLanguage": "en", "translated": true, "captions": true})), "joined golden-eagle-427 (en): 1 listeners, the source language, with its transcript"},
		{joinedLine(ev("sessionJoined", map[string]any{"targetLanguage": "en", "translated": true})), "joined golden-eagle-427 (en): 1 listeners, the source language"},
		{statusLine(ev("languageChanged", map[string]any{"targetLanguage": "en", "translated": true, "captions": true})), "language changed to en, the source language, with its transcript"},
		{statusLine(ev("languageChanged", map[string]any{"targetLanguage": "en", "translated": true, "captions": false})), "language changed to en, the source language, no transcript"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q\nwant %q", tc.got, tc.want)
		}
	}
}

// A translated caption is printed as it arrives, once final; an interim
// one (a transcript still being recognized) is not, the final one follows.
func TestListenPrintsFinalCaptions(t *testing.T) {
	ev := func(final bool, text string) client.Event {
		return client.Event{Type: "caption", JSON: map[string]any{"type": "caption", "targetLanguage": "es", "text": text, "final": final}}
	}
	if got := statusLine(ev(true, "Buenos días a todos.")); got != "caption: Buenos días a todos." {
		t.Errorf("final caption printed as %q", got)
	}
	if got := statusLine(ev(false, "Buenos")); got != "" {
		t.Errorf("interim caption printed as %q", got)
	}
}
