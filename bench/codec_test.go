package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

func opusConfig(packetMs int) Config {
	c := tinyConfig()
	c.Codec, c.PacketMs = protocol.CodecOpus, packetMs
	c.ChunkInterval = time.Duration(packetMs) * time.Millisecond
	return c
}

func TestCodecConfigChecks(t *testing.T) {
	for name, c := range map[string]Config{
		"unknown codec":           func() Config { c := tinyConfig(); c.Codec = "mp3"; return c }(),
		"opus without packet-ms":  func() Config { c := opusConfig(60); c.PacketMs = 0; return c }(),
		"opus, interval mismatch": func() Config { c := opusConfig(60); c.ChunkInterval = 20 * time.Millisecond; return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := opusConfig(40).Validate(); err != nil {
		t.Errorf("opus 40 ms: %v", err)
	}
	conv := func(f func(*Config)) Config {
		c := pcmToOpus(60)
		f(&c)
		return c
	}
	bad := map[string]Config{
		"unknown listener codec": conv(func(c *Config) { c.ListenerCodec = "mp3" }),
		"conversion, 20 ms chunks of 60 ms packets": conv(func(c *Config) {
			c.ChunkInterval, c.ChunkBytes = 20*time.Millisecond, 640
		}),
		"conversion with the baseline":   conv(func(c *Config) { c.Baseline = true }),
		"conversion during a join storm": conv(func(c *Config) { c.JoinStorm = time.Second }),
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	err := pcmToOpus(60).Validate()
	if opus.Available && err != nil {
		t.Errorf("pcm16 speakers, opus listeners: %v", err)
	}
	if !opus.Available && !errors.Is(err, opus.ErrUnavailable) {
		t.Errorf("pcm16 speakers, opus listeners, without Opus: %v", err)
	}
}

// pcmToOpus is a run whose pcm16 speakers send packetMs chunks to Opus
// listeners: the server encodes.
func pcmToOpus(packetMs int) Config {
	c := tinyConfig()
	c.ListenerCodec, c.PacketMs = protocol.CodecOpus, packetMs
	c.ChunkInterval = time.Duration(packetMs) * time.Millisecond
	c.ChunkBytes = protocol.SampleRate * 2 * packetMs / 1000
	return c
}

// A run with conversion: the server encodes pcm16 speakers for Opus
// listeners (or decodes Opus speakers for pcm16 listeners), each converted
// packet numbered like its chunk, so latency and loss are measured as for
// any run.
func TestTinyConversionRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real WebSockets for a few seconds")
	}
	if !opus.Available {
		t.Skip("this build has no Opus (build with -tags opus,nolibopusfile); TestCodecConfigChecks checks it says so")
	}
	toPCM := opusConfig(40)
	toPCM.ListenerCodec = protocol.CodecPCM16
	for _, c := range []struct {
		cfg        Config
		minK, maxK float64
	}{
		{pcmToOpus(60), 5, 40},
		{toPCM, 200, 320},
	} {
		res, err := Run(context.Background(), c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Pentecost
		what := r.Codec + " to " + r.ListenerCodec
		if r.ListenerCodec != c.cfg.ListenerCodec {
			t.Errorf("%s: listener codec %q", what, r.ListenerCodec)
		}
		for _, w := range r.Warnings {
			if strings.Contains(w, "codec") || strings.Contains(w, "numbered") {
				t.Errorf("%s: %s", what, w)
			}
		}
		if r.ExpectedFrames < 5*12 || r.LostFrames != 0 || r.SeqGaps != 0 || r.UnknownSeq != 0 {
			t.Errorf("%s: expected %d, lost %d, gaps %d, unknown %d", what, r.ExpectedFrames, r.LostFrames, r.SeqGaps, r.UnknownSeq)
		}
		if r.ListenerKbps < c.minK || r.ListenerKbps > c.maxK {
			t.Errorf("%s: %.1f kbit/s per listener, want %v to %v", what, r.ListenerKbps, c.minK, c.maxK)
		}
		t.Logf("%s: %.1f kbit/s per listener, p99 %v ms", what, r.ListenerKbps, r.LatencyP99Ms)
	}
}

// The speakers' audio: the speech-like signal cut into pcm16 chunks, or
// encoded into real Opus packets of the run's duration; a build without
// Opus says it cannot make them.
func TestSpeakerAudio(t *testing.T) {
	chunks, err := speakerAudio(protocol.CodecPCM16, 640, 0)
	if err != nil || len(chunks) != speechSeconds*50 || len(chunks[0]) != 640 {
		t.Fatalf("pcm16: %d chunks, %v", len(chunks), err)
	}
	if c, _ := speakerAudio(protocol.CodecPCM16, 1<<20, 0); len(c) != 1 || len(c[0]) != 1<<20 {
		t.Fatalf("a chunk longer than the signal: %d", len(c))
	}
	packets, err := speakerAudio(protocol.CodecOpus, 0, 60)
	if !opus.Available {
		if !errors.Is(err, opus.ErrUnavailable) {
			t.Fatalf("plain build: %v", err)
		}
		_, err := Run(context.Background(), opusConfig(60))
		if !errors.Is(err, opus.ErrUnavailable) {
			t.Fatalf("plain build Run: %v", err)
		}
		return
	}
	if err != nil || len(packets) != speechSeconds*1000/60 {
		t.Fatalf("opus: %d packets, %v", len(packets), err)
	}
	for i, p := range packets {
		if pk, err := opus.ParsePacket(p); err != nil || pk.Duration() != 60*time.Millisecond {
			t.Fatalf("packet %d: %v %v", i, pk.Duration(), err)
		}
	}
	if kbps := meanLen(packets) * 8 / 60; kbps < 10 || kbps > 30 {
		t.Fatalf("speech-like signal at %.1f kbit/s", kbps)
	}
}

// An Opus run measures Opus listeners end to end: real packets go out,
// every one arrives, and a listener costs a tenth of pcm16's bandwidth.
func TestTinyOpusRun(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real WebSockets for a few seconds")
	}
	if !opus.Available {
		t.Skip("this build has no Opus encoder (build with -tags opus,nolibopusfile); TestSpeakerAudio checks it says so")
	}
	res, err := Run(context.Background(), opusConfig(60))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Pentecost
	if r.Codec != "opus" || r.PacketMs != 60 || r.ChunkBytes < 20 || r.ChunkBytes > 300 {
		t.Fatalf("codec %s, %d ms, %d B packets", r.Codec, r.PacketMs, r.ChunkBytes)
	}
	// 0.8 s of 16.7 packets/s to 5 listeners.
	if r.ExpectedFrames < 5*12 || r.LostFrames != 0 || r.SeqGaps != 0 || r.UnknownSeq != 0 {
		t.Fatalf("expected %d, lost %d, gaps %d, unknown %d", r.ExpectedFrames, r.LostFrames, r.SeqGaps, r.UnknownSeq)
	}
	if r.ListenerKbps <= 5 || r.ListenerKbps > 40 {
		t.Fatalf("%.1f kbit/s per listener, want at most 40", r.ListenerKbps)
	}
	t.Logf("opus 60 ms: %.1f kbit/s per listener, %d B packets", r.ListenerKbps, r.ChunkBytes)
}
