package processor

import (
	"context"
	"sync"
	"testing"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// transcriber is a stand-in engine: every worker reports what it hears as
// the transcript ("said: ..."), a target worker also as its caption and
// its audio. It records each Stream it was started with.
type transcriber struct {
	mu      sync.Mutex
	streams map[string]Stream
}

func (tr *transcriber) Start(_ context.Context, s Stream, out Output) (Worker, error) {
	tr.mu.Lock()
	if tr.streams == nil {
		tr.streams = map[string]Stream{}
	}
	tr.streams[s.Language] = s
	tr.mu.Unlock()
	return WorkerFunc(func(c Chunk) error {
		out.Transcript("said: "+string(c.Data), true)
		if !s.Transcribes() {
			out.Caption("["+s.Language+"] "+string(c.Data), true)
			out.Audio(c.Data)
		}
		return nil
	}), nil
}

func (tr *transcriber) stream(lang string) (Stream, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s, ok := tr.streams[lang]
	return s, ok
}

// nextCaption reads c until a caption, and reports the audio kinds it saw
// on the way.
func nextCaption(t *testing.T, c *client.Conn) (client.Event, []uint8) {
	t.Helper()
	var kinds []uint8
	for {
		ev, err := c.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Audio != nil {
			kinds = append(kinds, ev.Audio.Header.Kind)
		}
		if ev.Type == "caption" {
			return ev, kinds
		}
	}
}

// With Transcript, an English-only audience gets the transcript: the
// server assigns the source language, the engine runs a worker for it
// (Language = SourceLanguage, no audio), and its transcript reaches the
// English listener, over the speaker's own audio. A Spanish listener
// joining adds a target worker, whose transcripts are not published: the
// English listener still gets each sentence once.
func TestTranscriptForASourceOnlyAudience(t *testing.T) {
	n := testserver.Start(t, nil)
	tr := &transcriber{}
	e := startEngine(t, n, tr, func(o *Options) { o.Transcript = true })
	sp, sid := speaker(t, n, "pcm16")
	e.rec.wait(t, 0, "sessionStarted", is(EventSessionStarted, sid, ""))
	en, joined := listener(t, n, sid, "en")
	if !joined.Bool("captions") || !joined.Bool("translated") {
		t.Fatalf("sessionJoined %v: want captions (the transcript) and translated (the speaker)", joined.JSON)
	}
	e.rec.wait(t, 0, "languages en", langsAre(e.conn, sid, "en"))
	e.rec.wait(t, 0, "en worker", is(EventWorkerStarted, sid, "en"))
	if s, _ := tr.stream("en"); s.Language != "en" || s.SourceLanguage != "en" || s.Audio || !s.Transcribes() {
		t.Fatalf("source stream %+v: want en → en, no audio", s)
	}

	send(t, sp, []byte("amen"))
	c, kinds := nextCaption(t, en)
	if c.String("text") != "said: amen" || c.String("targetLanguage") != "en" {
		t.Fatalf("transcript %v", c.JSON)
	}
	for _, k := range kinds {
		if k != 0 {
			t.Fatalf("the English listener got audio of kind %d: want the speaker's only", k)
		}
	}

	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	send(t, sp, []byte("alleluia"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "alleluia" {
		t.Fatalf("es audio %q", f.Chunk)
	}
	if c, _ := nextCaption(t, en); c.String("text") != "said: alleluia" {
		t.Fatalf("transcript %v", c.JSON)
	}
	send(t, sp, []byte("end"))
	if c, _ := nextCaption(t, en); c.String("text") != "said: end" {
		t.Fatalf("transcript %v: want each sentence once", c.JSON)
	}
	nextTranslated(t, es, nil)
	if n := e.rec.count(is(EventServerError, "", "")); n != 0 {
		t.Fatalf("%d server errors (refused publishes?)", n)
	}
	if st := e.Stats(); st.AudioChunks != 2 || st.AudioWithheld != 0 {
		t.Fatalf("stats %+v: want 2 Spanish chunks, nothing made for English", st)
	}
}

// Without Transcript nothing changes: the source language is never
// assigned, and an English-only audience gets no transcript.
func TestNoTranscriptWithoutTheOption(t *testing.T) {
	n := testserver.Start(t, nil)
	tr := &transcriber{}
	e := startEngine(t, n, tr, nil)
	sp, sid := speaker(t, n, "pcm16")
	e.rec.wait(t, 0, "sessionStarted", is(EventSessionStarted, sid, ""))
	en, joined := listener(t, n, sid, "en")
	if joined.Bool("captions") {
		t.Fatalf("sessionJoined %v: captions without a transcript processor", joined.JSON)
	}
	// The Spanish listener joins second, so the English one has been
	// seen by the server first.
	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	send(t, sp, []byte("x"))
	nextTranslated(t, es, nil)
	if _, ok := tr.stream("en"); ok {
		t.Fatal("a worker was started for the source language")
	}
	// The legacy transcript: from the Spanish worker, while it runs.
	if c, _ := nextCaption(t, en); c.String("text") != "said: x" {
		t.Fatalf("transcript %v", c.JSON)
	}
}
