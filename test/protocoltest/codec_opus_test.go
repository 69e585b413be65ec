//go:build opus

package protocoltest

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/audiotest"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// The conversions of docs/protocol.md 7.4 through a real node: listeners of
// both codecs of a pcm16 speaker and of an Opus speaker, a processor on an
// Opus session, the audio checked the way a listener's ears would, and one
// encode per stream whatever the number of listeners.

const sermon = "Grace and peace to you. Today we read from the book of Acts, chapter two."

// streaming lets a test send seconds of audio at once: the server may read
// the chunks after the fake clock has moved past them all, and the audio
// rate limit would then refuse what exceeds its burst; and a listener
// reading them on a busy machine may fall more than a default queue behind.
func streaming(c *server.Config) {
	loose(c)
	c.AudioMaxChunksPerSec = 1 << 20
	c.ListenerQueueChunks = 4096
}

// gather reads n audio frames from c on its own goroutine.
func gather(t *testing.T, c *client.Conn, n int) <-chan []*client.AudioFrame {
	t.Helper()
	out := make(chan []*client.AudioFrame, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	go func() {
		defer cancel()
		var fs []*client.AudioFrame
		for len(fs) < n {
			ev, err := c.Next(ctx)
			if err != nil {
				break
			}
			if f, err := ev.AudioFromJSON(); err == nil {
				fs = append(fs, f)
			}
		}
		out <- fs
	}()
	return out
}

func frames(t *testing.T, ch <-chan []*client.AudioFrame, n int, who string) []*client.AudioFrame {
	t.Helper()
	fs := <-ch
	if len(fs) != n {
		t.Fatalf("%s received %d frames, want %d", who, len(fs), n)
	}
	for i, f := range fs {
		if f.Header.Sequence != uint32(i) {
			t.Fatalf("%s: frame %d has sequence %d: numbers must be consecutive from 0", who, i, f.Header.Sequence)
		}
	}
	return fs
}

// decodeAll decodes Opus frames, checking each lasts ms.
func decodeAll(t *testing.T, fs []*client.AudioFrame, ms int) []int16 {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for i, f := range fs {
		p, err := opus.ParsePacket(f.Chunk)
		if err != nil || p.Duration() != time.Duration(ms)*time.Millisecond {
			t.Fatalf("packet %d: %v, %v (want %d ms)", i, p.Duration(), err, ms)
		}
		if pcm, err = dec.Decode(pcm, f.Chunk); err != nil {
			t.Fatal(err)
		}
	}
	return pcm
}

func TestListenersOfAPCMSpeaker(t *testing.T) {
	t.Parallel()
	n := start(t, streaming)
	speech := audiotest.Speech(t, sermon)
	raw := audiotest.Bytes(speech)
	chunks := len(raw) / 640
	raw = raw[:chunks*640]
	packets := chunks * 20 / 60

	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "packetMs", "60", "token", n.Token("alice")))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	pcmL, _ := listener(t, n, id, "en")
	opusL, joined := listener(t, n, id, "es", "codec", "opus")
	opusText, _ := listener(t, n, id, "fr", "codec", "opus", "audioEncoding", "base64")
	if joined.String("codec") != "opus" || joined.Int("packetMs") != 60 || !joined.Bool("transcoding") {
		t.Fatalf("sessionJoined %s", joined.Raw)
	}
	gotPCM, gotOpus, gotText := gather(t, pcmL, chunks), gather(t, opusL, packets), gather(t, opusText, packets)
	for i := 0; i < chunks; i++ {
		sendBin(t, sp, raw[i*640:(i+1)*640])
		n.Clock.Advance(20 * time.Millisecond)
	}
	pcm := frames(t, gotPCM, chunks, "the pcm16 listener")
	for i, f := range pcm {
		if !bytes.Equal(f.Chunk, raw[i*640:(i+1)*640]) {
			t.Fatalf("pcm16 chunk %d changed on the way", i)
		}
	}
	op := frames(t, gotOpus, packets, "the Opus listener")
	txt := frames(t, gotText, packets, "the base64 Opus listener")
	for i := range op {
		if !bytes.Equal(op[i].Chunk, txt[i].Chunk) {
			t.Fatalf("packet %d differs between binary and base64 listeners", i)
		}
		// A packet's ingest time is that of the oldest audio in it: the
		// first of its three chunks.
		if want := pcm[3*i].Header.Ingest; !op[i].Header.Ingest.Equal(want) {
			t.Fatalf("packet %d ingest %v, want chunk %d's %v", i, op[i].Header.Ingest, 3*i, want)
		}
	}
	audiotest.Check(t, speech[:packets*960], decodeAll(t, op, 60))
}

func TestListenersOfAnOpusSpeaker(t *testing.T) {
	t.Parallel()
	n := start(t, streaming)
	speech := audiotest.Speech(t, sermon)
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 40})
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	_ = enc.Push(speech, func(p []byte) error { sent = append(sent, bytes.Clone(p)); return nil })

	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", "opus", "packetMs", "40", "token", n.Token("alice")))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	opusL, _ := listener(t, n, id, "en", "codec", "opus")
	pcmL, joined := listener(t, n, id, "es") // asks for nothing: pcm16
	if joined.String("codec") != "pcm16" || joined.String("audioFormat") != "pcm16" {
		t.Fatalf("sessionJoined %s", joined.Raw)
	}
	gotOpus, gotPCM := gather(t, opusL, len(sent)), gather(t, pcmL, len(sent))
	for _, p := range sent {
		sendBin(t, sp, p)
		n.Clock.Advance(40 * time.Millisecond)
	}
	op := frames(t, gotOpus, len(sent), "the Opus listener")
	for i, f := range op {
		if !bytes.Equal(f.Chunk, sent[i]) {
			t.Fatalf("packet %d changed on the way", i)
		}
	}
	pcm := frames(t, gotPCM, len(sent), "the pcm16 listener")
	var decoded []byte
	for i, f := range pcm {
		if len(f.Chunk) != 640*2 {
			t.Fatalf("pcm16 chunk %d is %d bytes, want one 40 ms packet decoded (1280)", i, len(f.Chunk))
		}
		decoded = append(decoded, f.Chunk...)
	}
	audiotest.Check(t, speech, audiotest.Samples(decoded))
}

// A processor on an Opus session gets pcm16 by default and Opus when it
// asks; the pcm16 it publishes reaches Opus listeners encoded.
func TestProcessorOnAnOpusSession(t *testing.T) {
	t.Parallel()
	n := start(t, streaming)
	speech := audiotest.Speech(t, "One, two, three.")
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	_ = enc.Push(speech[:16000], func(p []byte) error { sent = append(sent, bytes.Clone(p)); return nil })

	pcmProc := dial(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "engine"), "languages", "es"))
	if ev := expect(t, pcmProc, "processorAttached"); ev.String("codec") != "pcm16" {
		t.Fatalf("processorAttached %s", ev.Raw)
	}
	opusProc := dial(t, n, q("action", "attachProcessor", "token", processorToken(t, n, "engine2"), "languages", "fr", "codec", "opus"))
	expect(t, opusProc, "processorAttached")
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", "opus", "packetMs", "20", "token", n.Token("alice")))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	for c, want := range map[*client.Conn]string{pcmProc: "pcm16", opusProc: "opus"} {
		if ev := expect(t, c, "sessionStarted"); ev.String("audioFormat") != want || ev.Int("packetMs") != 20 || ev.Int("sampleRate") != 16000 {
			t.Fatalf("sessionStarted %s, want %s", ev.Raw, want)
		}
	}
	esOpus, _ := listener(t, n, id, "es", "codec", "opus")
	esPCM, _ := listener(t, n, id, "es")
	expect(t, pcmProc, "languagesChanged")
	frOpus, _ := listener(t, n, id, "fr", "codec", "opus")
	expect(t, opusProc, "languagesChanged")

	sendBin(t, sp, sent[0])
	f := nextAudio(t, pcmProc)
	if len(f.Chunk) != 640 || f.Header.StreamID == 0 {
		t.Fatalf("the pcm16 processor got %d bytes (stream %d), want a decoded 20 ms chunk", len(f.Chunk), f.Header.StreamID)
	}
	if g := nextAudio(t, opusProc); !bytes.Equal(g.Chunk, sent[0]) {
		t.Fatal("the Opus processor did not get the packet as sent")
	}
	// The pcm16 processor publishes 60 ms of translation (three frames):
	// the pcm16 listener gets it as sent, the Opus listener one 20 ms
	// packet per 20 ms.
	gotOpus := gather(t, esOpus, 3)
	for i := 0; i < 3; i++ {
		tr := make([]byte, 8+640)
		tr[0], tr[1] = 1, 1
		tr[2], tr[3] = byte(f.Header.StreamID>>8), byte(f.Header.StreamID)
		tr[4], tr[5] = 'e', 's'
		copy(tr[8:], audiotest.Bytes(speech[i*320:(i+1)*320]))
		sendBin(t, pcmProc, tr)
		if g := nextAudio(t, esPCM); !bytes.Equal(g.Chunk, tr[8:]) || g.Header.Kind != 1 {
			t.Fatalf("the pcm16 listener of es got %d bytes, kind %d", len(g.Chunk), g.Header.Kind)
		}
	}
	for i, g := range frames(t, gotOpus, 3, "the Opus listener of es") {
		if p, err := opus.ParsePacket(g.Chunk); err != nil || p.Duration() != 20*time.Millisecond || g.Header.Kind != 1 {
			t.Fatalf("translated packet %d: %v %v kind %d", i, p.Duration(), err, g.Header.Kind)
		}
	}
	// The Opus processor must publish Opus.
	bad := append([]byte{1, 1, byte(f.Header.StreamID >> 8), byte(f.Header.StreamID), 'f', 'r', 0, 0}, 1<<3|1, 1, 2, 3)
	sendBin(t, opusProc, bad)
	expectError(t, opusProc, "INVALID_PARAMETER")
	good := append([]byte{1, 1, byte(f.Header.StreamID >> 8), byte(f.Header.StreamID), 'f', 'r', 0, 0}, sent[1]...)
	sendBin(t, opusProc, good)
	if g := nextAudio(t, frOpus); !bytes.Equal(g.Chunk, sent[1]) {
		t.Fatal("the Opus listener of fr did not get the Opus processor's packet as sent")
	}
}

// One encode per stream, however many listeners take it: the node's
// pentecost_codec_packets_total counts the encoder's packets.
func TestOneEncodePerStream(t *testing.T) {
	t.Parallel()
	n := start(t, streaming)
	run := func(listeners int) float64 {
		sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "packetMs", "60", "token", n.Token("alice")))
		id := expect(t, sp, "sessionCreated").String("sessionId")
		var got []<-chan []*client.AudioFrame
		for i := 0; i < listeners; i++ {
			c, _ := listener(t, n, id, []string{"en", "es", "fr"}[i%3], "codec", "opus")
			got = append(got, gather(t, c, 10))
		}
		before := encoded(t, n)
		for i := 0; i < 30; i++ { // 600 ms: ten 60 ms packets
			sendBin(t, sp, make([]byte, 640))
			n.Clock.Advance(20 * time.Millisecond)
		}
		for i, ch := range got {
			frames(t, ch, 10, "listener "+strconv.Itoa(i))
		}
		return encoded(t, n) - before
	}
	for _, listeners := range []int{1, 12} {
		if d := run(listeners); d != 10 {
			t.Fatalf("%d Opus listeners: %v packets encoded for 10 packets of audio, want 10", listeners, d)
		}
	}
}

// encoded reads the node's count of packets encoded.
func encoded(t *testing.T, n *testserver.Node) float64 {
	t.Helper()
	return max(0, metricValue(t, n, `pentecost_codec_packets_total{op="encode"}`))
}

// A transcript processor on an Opus session with only English listeners:
// it gets the session's audio in the codec it asked for (pcm16, decoded
// once), while the English listeners keep the speaker's packets as sent.
func TestTranscriptProcessorOnAnOpusSession(t *testing.T) {
	t.Parallel()
	n := start(t, streaming)
	speech := audiotest.Speech(t, "One, two, three.")
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: 20})
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	_ = enc.Push(speech[:16000], func(p []byte) error { sent = append(sent, bytes.Clone(p)); return nil })

	tp, _ := attachTranscript(t, n, "")
	sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", "opus", "packetMs", "20", "token", n.Token("alice")))
	id := expect(t, sp, "sessionCreated").String("sessionId")
	if ev := expect(t, tp, "sessionStarted"); ev.String("audioFormat") != "pcm16" {
		t.Fatalf("sessionStarted %s", ev.Raw)
	}
	en, _ := listener(t, n, id, "en", "codec", "opus")
	expectLanguages(t, tp, id, "en")
	sendBin(t, sp, sent[0])
	if f := nextAudio(t, tp); len(f.Chunk) != 640 {
		t.Fatalf("the transcript processor got %d bytes, want a decoded 20 ms chunk", len(f.Chunk))
	}
	if g := nextAudio(t, en); !bytes.Equal(g.Chunk, sent[0]) || g.Header.Kind != 0 {
		t.Fatal("the English listener did not get the speaker's packet as sent")
	}
}
