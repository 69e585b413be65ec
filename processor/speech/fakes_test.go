package speech

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pentecost/pentecost/processor"
)

// wait bounds every wait in these tests; it is a deadlock guard, never a
// timing assertion.
const wait = 10 * time.Second

// fakeRecognizer numbers the utterances it is given: the text of the n-th
// is "sentence n". It records how many samples each one received.
type fakeRecognizer struct {
	mu       sync.Mutex
	opened   int
	closed   int
	begun    int
	samples  []int
	langs    []string
	openErr  error
	endErr   map[int]error         // utterance index → End error
	endGate  map[int]chan struct{} // utterance index → End waits for it to close
	partials bool                  // report "partial n" after the first write
}

func (r *fakeRecognizer) Open(ctx context.Context, lang string) (Recognition, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.langs = append(r.langs, lang)
	if r.openErr != nil {
		return nil, r.openErr
	}
	r.opened++
	return &fakeRecognition{r: r}, nil
}

func (r *fakeRecognizer) snapshot() (opened, closed, begun int, samples []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened, r.closed, r.begun, append([]int(nil), r.samples...)
}

type fakeRecognition struct{ r *fakeRecognizer }

func (f *fakeRecognition) Begin(partial func(string)) (Utterance, error) {
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	u := &fakeUtterance{r: r, idx: r.begun, partial: partial}
	r.begun++
	r.samples = append(r.samples, 0)
	return u, nil
}

func (f *fakeRecognition) Close() error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.r.closed++
	return nil
}

type fakeUtterance struct {
	r       *fakeRecognizer
	idx     int
	partial func(string)
	wrote   bool
}

func (u *fakeUtterance) Write(pcm []int16) error {
	u.r.mu.Lock()
	u.r.samples[u.idx] += len(pcm)
	partials := u.r.partials
	u.r.mu.Unlock()
	if partials && !u.wrote {
		u.partial(fmt.Sprintf("partial %d", u.idx))
	}
	u.wrote = true
	return nil
}

func (u *fakeUtterance) End(ctx context.Context) (string, error) {
	u.r.mu.Lock()
	gate, err := u.r.endGate[u.idx], u.r.endErr[u.idx]
	u.r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("sentence %d", u.idx), nil
}

// fakeMT prefixes the target language; languages in fail fail every call,
// languages in unsupported fail Prepare.
type fakeMT struct {
	fail, unsupported map[string]bool
	block             chan struct{} // when set, Translate waits for it (or ctx)
	calls             atomic.Int64  // Prepare and Translate calls
}

func (m *fakeMT) Prepare(ctx context.Context, from, to string) error {
	m.calls.Add(1)
	if m.unsupported[to] {
		return fmt.Errorf("no pair %s-%s: %w", from, to, ErrUnsupported)
	}
	return nil
}

func (m *fakeMT) Translate(ctx context.Context, text, from, to string) (string, error) {
	m.calls.Add(1)
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if m.fail[to] {
		return "", errors.New("stand-in failure")
	}
	return "[" + to + "] " + text, nil
}

// fakeTTS speaks every text as 1000 samples of value 1000, in two calls to
// emit; languages in fail fail.
type fakeTTS struct {
	fail  map[string]bool
	calls atomic.Int64 // Prepare and Synthesize calls
}

func (t *fakeTTS) Prepare(ctx context.Context, lang string) error {
	t.calls.Add(1)
	return nil
}

func (t *fakeTTS) Synthesize(ctx context.Context, text, lang string, emit func([]int16)) error {
	t.calls.Add(1)
	if t.fail[lang] {
		return errors.New("stand-in synthesis failure")
	}
	pcm := make([]int16, 500)
	for i := range pcm {
		pcm[i] = 1000
	}
	emit(pcm)
	emit(pcm)
	return nil
}

// fakeOutput records what a worker publishes.
type fakeOutput struct {
	mu          sync.Mutex
	lang        string
	audio       []int16
	captions    []string
	transcripts []string // finals
	partials    []string
	logs        []string
	changed     chan struct{}
}

func newOutput(lang string) *fakeOutput { return &fakeOutput{lang: lang, changed: make(chan struct{})} }

func (o *fakeOutput) notify() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *fakeOutput) Audio(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i+1 < len(b); i += 2 {
		o.audio = append(o.audio, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	o.notify()
}

func (o *fakeOutput) Caption(text string, final bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.captions = append(o.captions, text)
	o.notify()
}

func (o *fakeOutput) Transcript(text string, final bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if final {
		o.transcripts = append(o.transcripts, text)
	} else {
		o.partials = append(o.partials, text)
	}
	o.notify()
}

func (o *fakeOutput) Logf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logs = append(o.logs, fmt.Sprintf(format, args...))
	o.notify()
}

// waitFor polls cond (under the output's lock) until it holds.
func (o *fakeOutput) waitFor(t *testing.T, what string, cond func(o *fakeOutput) bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		ok := cond(o)
		ch := o.changed
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			o.mu.Lock()
			defer o.mu.Unlock()
			t.Fatalf("timed out waiting for %s (%s): captions %q, transcripts %q, partials %q, logs %q",
				what, o.lang, o.captions, o.transcripts, o.partials, o.logs)
		}
	}
}

// logSink collects a Pipeline's log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (l *logSink) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !l.has(sub) {
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log line with %q in %q", sub, l.lines)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chunks makes 20 ms pcm16 chunks: speech is a 300 Hz tone at -10 dBFS,
// silence is zeros.
type chunker struct{ seq uint32 }

func (c *chunker) make(speech bool, d time.Duration) []processor.Chunk {
	var out []processor.Chunk
	for range int(d / (20 * time.Millisecond)) {
		b := make([]byte, 2*FrameSamples)
		if speech {
			for i := range FrameSamples {
				v := int16(0.3 * 32767 * math.Sin(2*math.Pi*300*float64(i)/processor.SampleRate))
				binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			}
		}
		out = append(out, processor.Chunk{Data: b, Sequence: c.seq, Ingest: time.Now()})
		c.seq++
	}
	return out
}

// speech makes n sentences of 1 s each, followed by 1 s of silence.
func (c *chunker) sentences(n int) []processor.Chunk {
	var out []processor.Chunk
	out = append(out, c.make(false, 300*time.Millisecond)...)
	for range n {
		out = append(out, c.make(true, time.Second)...)
		out = append(out, c.make(false, time.Second)...)
	}
	return out
}

// stream is a target language served with audio (or, for "en", the
// source language: the transcript).
func stream(lang string) processor.Stream {
	return processor.Stream{SessionID: "golden-eagle-427", Language: lang, SourceLanguage: "en", Format: "pcm16", Audio: lang != "en"}
}
