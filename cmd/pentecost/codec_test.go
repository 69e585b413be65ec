package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
)

// tone is n samples of a 440 Hz tone as PCM16 bytes.
func tone(n int) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/16000))))
	}
	return b
}

// speak sends Opus by default, in packets of the session's duration; a
// build without Opus says so and sends PCM.
func TestSpeakCodecChoice(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	var stdout, stderr bytes.Buffer
	err := runSpeak(ctx, []string{"--server", srv.URL, "--token", "tok", "--packet-ms", "40"}, bytes.NewReader(tone(3200)), &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	format, ms := srv.Format("golden-eagle-427")
	chunks := srv.Chunks("golden-eagle-427")
	if !opus.Available {
		if format != "pcm16" || ms != 40 || len(chunks) != 10 || len(chunks[0]) != 640 {
			t.Fatalf("plain build: session %s/%d ms, %d chunks", format, ms, len(chunks))
		}
		if msg := stderr.String(); !strings.Contains(msg, "sending pcm16, not Opus") || !strings.Contains(msg, "-tags opus,nolibopusfile") {
			t.Fatalf("plain build does not say why it sends pcm16:\n%s", msg)
		}
		return
	}
	if format != "opus" || ms != 40 || len(chunks) != 5 {
		t.Fatalf("session %s/%d ms with %d chunks; want opus, 40 ms, 5 packets for 200 ms", format, ms, len(chunks))
	}
	for i, c := range chunks {
		p, err := opus.ParsePacket(c)
		if err != nil || p.Duration() != 40*time.Millisecond {
			t.Fatalf("chunk %d: %v %v", i, p.Duration(), err)
		}
	}
	if !strings.Contains(stderr.String(), "sending Opus: 40 ms packets") || !strings.Contains(stdout.String(), "sent 0.2 s of audio") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

// listen asks for Opus (a build without Opus asks for pcm16 and says so),
// decodes whatever sessionJoined says it gets, and says when that is not
// what it asked for.
func TestListenCodecChoice(t *testing.T) {
	ctx := cliTestCtx(t)
	srv := cliFakeServer(t)
	srv.CreateSession("holy-dove-123", "en") // pcm16; the fake never converts
	stdout, stderr := newOutputBuffer(), newOutputBuffer()
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runListen(lctx, []string{"holy-dove-123", "--lang", "en", "--server", srv.URL, "--out", "-", "--raw"}, nil, stdout, stderr)
	}()
	if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 1 }); err != nil {
		t.Fatal(err)
	}
	asked := srv.ListenerCodecs("holy-dove-123")
	srv.Inject("holy-dove-123", []byte{7, 0, 8, 0})
	if err := stdout.waitLen(ctx, 4); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := string(stderr.Bytes())
	if string(stdout.Bytes()) != "\x07\x00\x08\x00" {
		t.Errorf("wrote % x", stdout.Bytes())
	}
	if !opus.Available {
		if len(asked) != 1 || asked[0] != "pcm16" || !strings.Contains(log, "asking for pcm16, not Opus") {
			t.Fatalf("plain build asked for %v; log:\n%s", asked, log)
		}
		return
	}
	if len(asked) != 1 || asked[0] != "opus" || !strings.Contains(log, "receiving pcm16, not opus: the server cannot convert between codecs") {
		t.Fatalf("asked for %v; log:\n%s", asked, log)
	}
}
