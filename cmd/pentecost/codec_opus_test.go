//go:build opus

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/audiotest"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// speak encodes a speech WAV into an Opus session, the server relays the
// packets, listen decodes them into a WAV: what comes out sounds like what
// went in.
func TestSpeakListenOpusQuality(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	srv.CreateSessionFormat("holy-dove-123", "en", "opus", 60)
	speech := audiotest.Speech(t, "Grace and peace to you. Today we read from the book of Acts.")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := wav.NewWriter(f, 16000, 1)
	w.Write(audiotest.Bytes(speech))
	w.Close()
	f.Close()

	var lerr bytes.Buffer
	listened := make(chan error, 1)
	go func() {
		listened <- runListen(ctx, []string{"holy-dove-123", "--lang", "en", "--server", srv.URL, "--out", out}, nil, io.Discard, &lerr)
	}()
	if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 1 }); err != nil {
		t.Fatal(err)
	}
	var serr bytes.Buffer
	if err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--session", "holy-dove-123", "--file", in}, nil, io.Discard, &serr); err != nil {
		t.Fatalf("speak: %v\n%s", err, serr.String())
	}
	if err := <-listened; err != nil {
		t.Fatalf("listen: %v\n%s", err, lerr.String())
	}
	if !strings.Contains(lerr.String(), " 0 gaps") {
		t.Errorf("listener log:\n%s", lerr.String())
	}
	rf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r, err := wav.NewReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	audiotest.Check(t, speech, audiotest.Samples(b))
}

// A gap in an Opus stream is concealed with about the missing duration.
func TestReceiveConcealsOpusGaps(t *testing.T) {
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var evs []client.Event
	seq := uint32(0)
	_ = enc.Push(audiotest.Samples(tone(320*6)), func(p []byte) error {
		if seq != 2 && seq != 3 { // two packets lost
			evs = append(evs, audioEvent(seq, 0, append([]byte(nil), p...)...))
		}
		seq++
		return nil
	})
	dec, _ := client.NewDecoder(protocol.CodecOpus)
	var sink, log bytes.Buffer
	st, err := receiveAudio(context.Background(), &scriptedEvents{evs: evs}, dec, &sink, &log)
	if err != nil {
		t.Fatal(err)
	}
	if sink.Len() != 6*640 || st.gaps.Missing != 2 || !strings.Contains(log.String(), "gap: 2 chunks missing (seq 2..3)") {
		t.Fatalf("wrote %d bytes (want %d), %+v\n%s", sink.Len(), 6*640, st.gaps, log.String())
	}
}
