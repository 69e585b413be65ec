package protocoltest

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/server"
)

// Audio of docs/protocol.md, "Audio and binary frames" and its audio rules.

func TestAudioFrameHeader(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "en")
	for i := 0; i < 5; i++ {
		n.Clock.Advance(1500 * time.Microsecond * time.Duration(i+1))
		payload := chunk(i, 100+i)
		sendBin(t, sp, payload)
		ev, err := li.Next(ctx(t))
		if err != nil || ev.Audio == nil {
			t.Fatalf("chunk %d: %v %q", i, err, ev.Type)
		}
		raw := ev.Raw
		if len(raw) != 16+len(payload) {
			t.Fatalf("frame of %d bytes for a %d-byte chunk", len(raw), len(payload))
		}
		// Decode the header by hand: the wire layout is the contract.
		if raw[0] != 1 || raw[1] != 0 || raw[2] != 0 || raw[3] != 0 {
			t.Fatalf("header bytes 0-3 = % x, want 01 00 00 00", raw[:4])
		}
		seq := uint32(raw[4])<<24 | uint32(raw[5])<<16 | uint32(raw[6])<<8 | uint32(raw[7])
		if seq != uint32(i) {
			t.Fatalf("sequence %d, want %d", seq, i)
		}
		var us uint64
		for _, b := range raw[8:16] {
			us = us<<8 | uint64(b)
		}
		if want := n.Clock.Now().UnixMicro(); int64(us) != want {
			t.Fatalf("ingest time %d µs, want the server clock's %d", us, want)
		}
		if !bytes.Equal(raw[16:], payload) {
			t.Fatal("chunk changed on the way")
		}
	}
}

func TestAudioSameFramesForEveryLanguage(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	sp, id := speaker(t, n, "alice")
	es, _ := listener(t, n, id, "es")
	fr, _ := listener(t, n, id, "fr")
	en, _ := listener(t, n, id, "en")
	// Without a processor, every language hears the source stream.
	for i := 0; i < 4; i++ {
		sendBin(t, sp, chunk(i, 321))
		a, b, c := rawAudio(t, es), rawAudio(t, fr), rawAudio(t, en)
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Fatalf("chunk %d: listeners got different frames", i)
		}
		if a[1] != 0 {
			t.Fatalf("kind %d, want 0 (source) without a processor", a[1])
		}
	}
}

func rawAudio(t *testing.T, c *client.Conn) []byte {
	t.Helper()
	for {
		ev, err := c.Next(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Audio != nil {
			return ev.Raw
		}
	}
}

func TestBase64ListenerMatchesBinary(t *testing.T) {
	t.Parallel()
	n := start(t, nil)
	for _, format := range []string{"pcm16", "opus"} {
		t.Run(format, func(t *testing.T) {
			sp := dial(t, n, q("action", "createSession", "sourceLanguage", "en", "audioFormat", format, "token", n.Token("alice")))
			id := expect(t, sp, "sessionCreated").String("sessionId")
			// Each asks for the session's own codec: what the speaker sends
			// reaches it unchanged.
			bin, _ := listener(t, n, id, "es", "codec", format)
			txt, _ := listener(t, n, id, "es", "audioEncoding", "base64", "codec", format)
			for i := 0; i < 3; i++ {
				n.Clock.Advance(20 * time.Millisecond)
				payload := chunk(i, 200)
				sendBin(t, sp, payload)
				f := nextAudio(t, bin)
				ev, err := txt.Next(ctx(t))
				if err != nil {
					t.Fatal(err)
				}
				if ev.Audio != nil || ev.Type != "audioData" {
					t.Fatalf("base64 listener got %q (binary %v), want audioData only", ev.Type, ev.Audio != nil)
				}
				if ev.String("sessionId") != id || ev.String("targetLanguage") != "es" || ev.String("format") != format ||
					ev.Int("kind") != 0 || !ev.Has("kind") || uint32(ev.Int("sequenceNumber")) != f.Header.Sequence || f.Header.Sequence != uint32(i) {
					t.Fatalf("audioData = %s (binary seq %d)", ev.Raw, f.Header.Sequence)
				}
				got, err := base64.StdEncoding.DecodeString(ev.String("audioData"))
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("audioData does not decode to the chunk: %v", err)
				}
				checkMillis(t, ev, "timestamp")
			}
		})
	}
}

func TestJSONAudioChunk(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	bob, other := speaker(t, n, "bob")
	otherLi, _ := listener(t, n, other, "es")
	msgs := []map[string]any{
		{"action": "audioChunk", "audioData": b64(chunk(0, 64))},
		{"action": "sendAudio", "audioData": b64(chunk(1, 64))},
		{"action": "audioChunk", "data": b64(chunk(2, 64))},
		{"action": "sendAudio", "data": b64(chunk(3, 64)), "sessionId": id},
	}
	for i, m := range msgs {
		sendJSON(t, sp, m)
		wantAudio(t, li, uint32(i), chunk(i, 64))
	}
	// A chunk naming another session is FORBIDDEN and goes nowhere.
	act(t, sp, "audioChunk", "audioData", b64(chunk(9, 64)), "sessionId", other)
	ev := expect(t, sp, "error")
	checkErr(t, ev, "FORBIDDEN", 403, nil)
	// Bad base64 and a missing chunk are errors too.
	act(t, sp, "audioChunk", "audioData", "***not base64***")
	checkErr(t, expect(t, sp, "error"), "INVALID_PARAMETER", 400, map[string]any{"field": "audioData"})
	act(t, sp, "sendAudio")
	checkErr(t, expect(t, sp, "error"), "MISSING_PARAMETER", 400, map[string]any{"field": "audioData"})
	alive(t, sp)
	sendBin(t, sp, chunk(4, 64))
	wantAudio(t, li, 4, chunk(4, 64))
	// bob's listener got nothing of alice's: its first audio is bob's.
	sendBin(t, bob, chunk(5, 64))
	wantAudio(t, otherLi, 0, chunk(5, 64))
}

func TestEmptyChunk(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	sendBin(t, sp, []byte{})
	ev := expect(t, sp, "error")
	checkErr(t, ev, "INVALID_PARAMETER", 400, map[string]any{"field": nil})
	alive(t, sp)
	sendBin(t, sp, []byte{42}) // 1 byte is the smallest chunk
	wantAudio(t, li, 0, []byte{42})
}

func TestChunkSizeLimit(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{32 * 1024, 1000} {
		name := "default"
		mutate := loose
		if limit != 32*1024 {
			name = "configured"
			l := limit
			mutate = cfgs(loose, func(c *server.Config) { c.AudioMaxChunkBytes = l })
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := start(t, mutate)
			sp, id := speaker(t, n, "alice")
			li, _ := listener(t, n, id, "es")
			seq := uint32(0)
			// Exactly at the limit: accepted, both ways.
			at := chunk(1, limit)
			sendBin(t, sp, at)
			wantAudio(t, li, seq, at)
			seq++
			act(t, sp, "audioChunk", "audioData", b64(at))
			wantAudio(t, li, seq, at)
			seq++
			// One byte over, both ways, and far over in binary: refused, no close.
			over := chunk(2, limit+1)
			sendBin(t, sp, over)
			checkErr(t, expect(t, sp, "error"), "AUDIO_CHUNK_TOO_LARGE", 413, nil)
			act(t, sp, "audioChunk", "audioData", b64(over))
			checkErr(t, expect(t, sp, "error"), "AUDIO_CHUNK_TOO_LARGE", 413, nil)
			sendBin(t, sp, chunk(3, 3*limit))
			checkErr(t, expect(t, sp, "error"), "AUDIO_CHUNK_TOO_LARGE", 413, nil)
			alive(t, sp)
			// The refused chunks took no sequence number.
			sendBin(t, sp, chunk(4, 10))
			wantAudio(t, li, seq, chunk(4, 10))
		})
	}
}

func TestAudioRateLimit(t *testing.T) {
	t.Parallel()
	n := start(t, cfgs(loose, func(c *server.Config) { c.AudioMaxChunksPerSec = 5 }))
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	seq := uint32(0)
	for round := 0; round < 2; round++ {
		for i := 0; i < 12; i++ {
			sendBin(t, sp, chunk(i, 20))
		}
		act(t, sp, "heartbeat")
		evs := collectUntil(t, sp, "heartbeatAck")
		if errs := countType(evs, "error"); errs != 1 {
			t.Fatalf("round %d: %d errors for 7 chunks over the rate, want exactly 1 (at most one a second)", round, errs)
		}
		for _, ev := range evs {
			if ev.Type == "error" {
				checkErr(t, ev, "RATE_LIMIT_EXCEEDED", 429, map[string]any{"retryAfter": positiveNumber{}})
			}
		}
		// Five got through, the rest were dropped without a sequence number.
		for i := 0; i < 5; i++ {
			wantAudio(t, li, seq, chunk(i, 20))
			seq++
		}
		n.Clock.Advance(time.Second)
	}
	sendBin(t, sp, chunk(99, 20))
	wantAudio(t, li, seq, chunk(99, 20))
}

func TestChunksWhilePausedOrMutedAreDropped(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	b64li, _ := listener(t, n, id, "fr", "audioEncoding", "base64")
	listeners := []*client.Conn{li, b64li}
	k := 0
	sendAndHear := func(seq uint32) {
		t.Helper()
		sendBin(t, sp, chunk(k, 30))
		for _, c := range listeners {
			wantAudio(t, c, seq, chunk(k, 30))
		}
		k++
	}
	sendAndHear(0)
	gates := []struct{ on, onType, off, offType string }{
		{"pauseBroadcast", "broadcastPaused", "resumeBroadcast", "broadcastResumed"},
		{"muteBroadcast", "broadcastMuted", "unmuteBroadcast", "broadcastUnmuted"},
	}
	for g, gate := range gates {
		act(t, sp, gate.on)
		expect(t, sp, gate.onType)
		for i := 0; i < 3; i++ {
			sendBin(t, sp, chunk(100+i, 30)) // dropped, no error
			act(t, sp, "audioChunk", "audioData", b64(chunk(110+i, 30)))
		}
		act(t, sp, gate.off)
		for _, ev := range collectUntil(t, sp, gate.offType) {
			if ev.Type == "error" {
				t.Fatalf("chunk while %s got an error: %s", gate.on, ev.Raw)
			}
		}
		for _, c := range listeners {
			expectBeforeAudio(t, c, gate.onType)
			expectBeforeAudio(t, c, gate.offType)
		}
		sendAndHear(uint32(g + 1)) // the sequence continues: 0, 1, 2
	}
	// The same holds for a pause over HTTP.
	if r := httpDo(t, n, "PATCH", "/sessions/"+id, n.Token("alice"), map[string]any{"status": "paused"}); r.Status != 200 {
		t.Fatalf("PATCH: %d %s", r.Status, r.Raw)
	}
	expect(t, sp, "broadcastPaused")
	sendBin(t, sp, chunk(120, 30))
	alive(t, sp) // the chunk was handled before the resume below
	httpDo(t, n, "PATCH", "/sessions/"+id, n.Token("alice"), map[string]any{"status": "active"})
	expect(t, sp, "broadcastResumed")
	for _, c := range listeners {
		expectBeforeAudio(t, c, "broadcastResumed")
	}
	sendAndHear(3)
}

// Bad input from one connection never harms the others: the listener's
// audio keeps arriving, with no gap.
func TestBadInputDoesNotHarmOthers(t *testing.T) {
	t.Parallel()
	n := start(t, loose)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	other, _ := listener(t, n, id, "fr") // a listener that misbehaves
	bare := dial(t, n, "")               // and an unjoined connection
	huge := []byte(`{"action":"heartbeat","pad":"` + strings.Repeat("x", 129*1024) + `"}`)
	abuse := []struct {
		name string
		c    *client.Conn
		do   func(c *client.Conn) error
		code string
	}{
		{"invalid UTF-8", bare, func(c *client.Conn) error { return c.SendText(ctx(t), []byte{'{', 0xff, 0xfe, '}'}) }, "INVALID_MESSAGE"},
		{"JSON over 128 KiB", bare, func(c *client.Conn) error { return c.SendText(ctx(t), huge) }, "INVALID_MESSAGE"},
		{"binary from an unjoined connection", bare, func(c *client.Conn) error { return c.SendBinary(ctx(t), chunk(1, 100)) }, "UNAUTHORIZED_ACTION"},
		{"binary from a listener", other, func(c *client.Conn) error { return c.SendBinary(ctx(t), chunk(1, 100)) }, "UNAUTHORIZED_ACTION"},
		{"huge JSON from a listener", other, func(c *client.Conn) error { return c.SendText(ctx(t), huge) }, "INVALID_MESSAGE"},
		{"garbage from a listener", other, func(c *client.Conn) error { return c.SendText(ctx(t), []byte("\x00\x01")) }, "INVALID_MESSAGE"},
		{"endSession from a listener", other, func(c *client.Conn) error {
			return c.Send(ctx(t), map[string]any{"action": "endSession"})
		}, "UNAUTHORIZED_ACTION"},
	}
	seq := uint32(0)
	for _, a := range abuse {
		sendBin(t, sp, chunk(int(seq), 50))
		if err := a.do(a.c); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		checkErr(t, expect(t, a.c, "error"), a.code, map[string]int{"INVALID_MESSAGE": 400, "UNAUTHORIZED_ACTION": 403}[a.code], nil)
		alive(t, a.c)
		sendBin(t, sp, chunk(int(seq)+1, 50))
		wantAudio(t, li, seq, chunk(int(seq), 50))
		wantAudio(t, li, seq+1, chunk(int(seq)+1, 50))
		seq += 2
	}
	// The misbehaving listener is still a listener and still hears.
	sendBin(t, sp, chunk(int(seq), 50))
	wantAudio(t, li, seq, chunk(int(seq), 50))
	for {
		f := nextAudio(t, other)
		if f.Header.Sequence > seq {
			t.Fatalf("misbehaving listener: seq %d, past %d", f.Header.Sequence, seq)
		}
		if f.Header.Sequence == seq {
			break
		}
	}
}
