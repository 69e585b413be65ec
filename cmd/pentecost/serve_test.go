package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/wav"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `pentecost serve` in-process and returns its base URL,
// its stdout, and a stop function that returns the exit code, as a SIGTERM
// would.
func startServe(t *testing.T, dataDir string, extra ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	addr := freeAddr(t)
	base := "http://" + addr
	out, _, stop := startServeAt(t, addr, dataDir, func() error {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, extra...)
	return base, out, stop
}

// startServeAt runs `pentecost serve --addr addr` in-process until ready
// answers, and returns its stdout, its stderr (the logs) and the stop
// function of startServe.
func startServeAt(t *testing.T, addr, dataDir string, ready func() error, extra ...string) (*syncBuffer, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errs := &syncBuffer{}, &syncBuffer{}
	code := make(chan int, 1)
	args := append([]string{"serve", "--addr", addr, "--data-dir", dataDir, "--shutdown-grace", "200ms"}, extra...)
	go func() { code <- run(ctx, args, nil, out, errs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ready() == nil {
			break
		}
		select {
		case c := <-code:
			t.Fatalf("serve exited with %d: %s", c, errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %s", errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	var exit int
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop")
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return out, errs, stop
}

// tone writes a WAV of d seconds of a 440 Hz tone at 44.1 kHz stereo, so the
// speak command has to convert it.
func toneWAV(t *testing.T, d time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tone.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wav.NewWriter(f, 44100, 2)
	if err != nil {
		t.Fatal(err)
	}
	n := int(d.Seconds() * 44100)
	buf := make([]byte, 4)
	for i := 0; i < n; i++ {
		v := int16(8000 * sinApprox(float64(i)*440/44100))
		binary.LittleEndian.PutUint16(buf, uint16(v))
		binary.LittleEndian.PutUint16(buf[2:], uint16(v))
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// sinApprox is a triangle-ish wave in [-1,1] for phase in cycles; the test
// needs audio, not a pure tone.
func sinApprox(cycles float64) float64 {
	p := cycles - float64(int(cycles))
	if p < 0.5 {
		return 4*p - 1
	}
	return 3 - 4*p
}

// The README's tour, in-process: serve, speak a WAV file, listen in another
// language, get the audio back in a WAV file with no gap; then a SIGTERM
// stops the server with exit code 0.
func TestTourServeSpeakListen(t *testing.T) {
	dataDir := t.TempDir()
	base, serveOut, stop := startServe(t, dataDir)
	if !strings.Contains(serveOut.String(), "/speak#token=") {
		t.Fatalf("serve printed no speaker link: %q", serveOut.String())
	}

	speakOut, speakErr := &syncBuffer{}, &syncBuffer{}
	speakDone := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	file := toneWAV(t, 1500*time.Millisecond)
	go func() {
		speakDone <- run(ctx, []string{"speak", "--server", base, "--data-dir", dataDir, "--file", file, "--keep"}, nil, speakOut, speakErr)
	}()
	idRe := regexp.MustCompile(`[a-z]+-[a-z]+-[1-9][0-9]{2}`)
	var id string
	for id == "" {
		select {
		case c := <-speakDone:
			t.Fatalf("speak exited %d early: %s %s", c, speakOut.String(), speakErr.String())
		case <-time.After(20 * time.Millisecond):
		}
		id = idRe.FindString(speakOut.String())
	}

	outFile := filepath.Join(t.TempDir(), "heard.wav")
	listenErr := &syncBuffer{}
	if c := run(ctx, []string{"listen", id, "--lang", "es", "--server", base, "--out", outFile, "--duration", "1200ms"}, nil, io.Discard, listenErr); c != 0 {
		t.Fatalf("listen exited %d: %s", c, listenErr.String())
	}
	if c := <-speakDone; c != 0 {
		t.Fatalf("speak exited %d: %s", c, speakErr.String())
	}
	f, err := os.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := wav.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format.SampleRate != 16000 || r.Format.Channels != 1 {
		t.Fatalf("heard.wav format %+v", r.Format)
	}
	pcm, _ := io.ReadAll(r)
	if len(pcm) < 16000 { // at least half a second of audio came back
		t.Fatalf("heard only %d bytes of audio", len(pcm))
	}
	if !strings.Contains(listenErr.String(), " 0 gaps") {
		t.Errorf("listen reported gaps: %s", listenErr.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0", code)
	}
}

// A corrupt data dir is a clear start-up error, never a silent empty state.
func TestServeRefusesCorruptDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sessions.db"), bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", freeAddr(t), "--data-dir", dir}, nil, io.Discard, &errs)
	if code == 0 || !strings.Contains(errs.String(), "sessions.db") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the file", code, errs.String())
	}
	t.Logf("start-up error: %s", strings.TrimSpace(errs.String()))
}

func TestServeFlagsFromEnvironment(t *testing.T) {
	t.Setenv("PENTECOST_MAX_LISTENERS_PER_SESSION", "7")
	t.Setenv("PENTECOST_SPEAKER_GRACE", "notaduration")
	var errs bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", freeAddr(t), "--data-dir", t.TempDir()}, nil, io.Discard, &errs)
	if code == 0 || !strings.Contains(errs.String(), "PENTECOST_SPEAKER_GRACE") {
		t.Fatalf("a bad environment value must name the variable: exit %d, %q", code, errs.String())
	}
}
