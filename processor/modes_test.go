package processor

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeOutput records what a worker publishes.
type fakeOutput struct {
	mu       sync.Mutex
	audio    [][]byte
	captions []string // "lang-kind final|partial text"
	logs     []string
	changed  chan struct{} // signalled on every call
}

func newFakeOutput() *fakeOutput { return &fakeOutput{changed: make(chan struct{}, 1)} }

func (o *fakeOutput) signal() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *fakeOutput) Audio(b []byte) {
	o.mu.Lock()
	o.audio = append(o.audio, bytes.Clone(b))
	o.mu.Unlock()
	o.signal()
}

func (o *fakeOutput) Caption(text string, final bool) { o.caption("caption", text, final) }
func (o *fakeOutput) Transcript(text string, final bool) {
	o.caption("transcript", text, final)
}

func (o *fakeOutput) caption(kind, text string, final bool) {
	f := "partial"
	if final {
		f = "final"
	}
	o.mu.Lock()
	o.captions = append(o.captions, kind+" "+f+" "+text)
	o.mu.Unlock()
	o.signal()
}

func (o *fakeOutput) Logf(format string, args ...any) {
	o.mu.Lock()
	o.logs = append(o.logs, fmt.Sprintf(format, args...))
	o.mu.Unlock()
	o.signal()
}

func (o *fakeOutput) audioBytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return bytes.Join(o.audio, nil)
}

// waitFor waits until cond holds over the recorded output.
func (o *fakeOutput) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		ok := cond()
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func samples(b []byte) []int16 {
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

func zeroCrossings(s []int16) int {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			n++
		}
	}
	return n
}

func TestToneGenerator(t *testing.T) {
	for _, hz := range []float64{262, 440, 523, 988} {
		g := ToneGenerator{Freq: hz, Amplitude: 0.25}
		buf := make([]byte, BytesPerSecond) // one second
		g.Fill(buf)
		s := samples(buf)
		// A sine of f Hz crosses zero 2f times a second.
		if got, want := zeroCrossings(s), int(2*hz); math.Abs(float64(got-want)) > 2 {
			t.Errorf("%v Hz: %d zero crossings in 1 s, want about %d", hz, got, want)
		}
		peak := 0
		for _, v := range s {
			peak = max(peak, int(math.Abs(float64(v))))
		}
		if want := int(math.Round(0.25 * math.MaxInt16)); peak < want-2 || peak > want+1 {
			t.Errorf("%v Hz: peak %d, want %d", hz, peak, want)
		}
	}
	// Chunked generation is the same continuous tone.
	whole := make([]byte, 32000)
	(&ToneGenerator{Freq: 440, Amplitude: 0.5}).Fill(whole)
	g := ToneGenerator{Freq: 440, Amplitude: 0.5}
	var pieces []byte
	for len(pieces) < len(whole) {
		b := make([]byte, 640)
		g.Fill(b)
		pieces = append(pieces, b...)
	}
	if !bytes.Equal(pieces, whole) {
		t.Error("a tone generated in chunks differs from one generated at once")
	}
	// Odd lengths are kept, the dangling byte zeroed.
	odd := bytes.Repeat([]byte{0xFF}, 7)
	g.Fill(odd)
	if odd[6] != 0 {
		t.Errorf("odd byte %x, want 0", odd[6])
	}
}

func TestToneFrequency(t *testing.T) {
	for lang, want := range map[string]float64{"es": 440, "fr": 523, "de": 587, "en": 262} {
		if got := ToneFrequency(lang); got != want {
			t.Errorf("%s: %v Hz, want %v", lang, got, want)
		}
	}
	seen := map[float64]string{}
	for lang, f := range toneTable {
		if other, dup := seen[f]; dup {
			t.Errorf("%s and %s share %v Hz", lang, other, f)
		}
		seen[f] = lang
	}
	for _, lang := range []string{"xh", "yo", "zu", "cy"} {
		f := ToneFrequency(lang)
		if f < 300 || f > 990 || f != ToneFrequency(lang) {
			t.Errorf("%s: fallback %v Hz", lang, f)
		}
	}
}

func TestToneWorker(t *testing.T) {
	out := newFakeOutput()
	w, err := (&Tone{}).Start(context.Background(), Stream{SessionID: "s", Language: "de", SourceLanguage: "en", Format: "pcm16"}, out)
	if err != nil {
		t.Fatal(err)
	}
	// 2.5 s of 20 ms chunks, one of them odd-sized.
	sizes := []int{641}
	for range 124 {
		sizes = append(sizes, 640)
	}
	for i, n := range sizes {
		if err := w.Process(Chunk{Data: make([]byte, n), Sequence: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.audio) != len(sizes) {
		t.Fatalf("%d chunks out of %d in", len(out.audio), len(sizes))
	}
	for i, n := range sizes {
		if len(out.audio[i]) != n {
			t.Fatalf("chunk %d: %d bytes, want %d", i, len(out.audio[i]), n)
		}
	}
	want := []string{"caption final [de] tone 587 Hz", "caption final [de] tone 587 Hz"}
	if strings.Join(out.captions, "|") != strings.Join(want, "|") {
		t.Fatalf("captions over 2.5 s: %q, want one at the start and one at 2 s", out.captions)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestExecWorker(t *testing.T) {
	needShell(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newFakeOutput()
	x := &Exec{Command: `echo "caption: hola" >&2; echo "partial: ho" >&2; echo "transcript: hello" >&2; echo "just a log line" >&2; exec cat`}
	w, err := x.Start(ctx, Stream{SessionID: "s", Language: "es", SourceLanguage: "en", Format: "pcm16"}, out)
	if err != nil {
		t.Fatal(err)
	}
	var src []byte
	for i := range 50 {
		c := ramp(641, byte(i)) // odd sizes: output stays whole samples
		src = append(src, c...)
		if err := w.Process(Chunk{Data: c}); err != nil {
			t.Fatal(err)
		}
	}
	even := len(src) &^ 1
	out.waitFor(t, "the echoed audio", func() bool { return len(bytes.Join(out.audio, nil)) >= even })
	out.waitFor(t, "the stderr lines", func() bool { return len(out.captions) == 3 && len(out.logs) >= 2 })
	if !bytes.Equal(out.audioBytes(), src[:even]) {
		t.Fatal("cat's output differs from its input")
	}
	out.mu.Lock()
	for _, c := range out.audio {
		if len(c)%2 != 0 || len(c) > 641 {
			t.Errorf("published a %d-byte chunk", len(c))
		}
	}
	if got := strings.Join(out.captions, "|"); got != "caption final hola|caption partial ho|transcript final hello" {
		t.Errorf("captions %q", got)
	}
	if !strings.Contains(strings.Join(out.logs, "\n"), "stderr: just a log line") {
		t.Errorf("logs %q", out.logs)
	}
	out.mu.Unlock()
	select {
	case <-w.(Exiter).Done():
		t.Fatal("cat exited while its stdin is open")
	default:
	}
	// Stopping kills it; that is no failure.
	cancel()
	if err := w.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
}

func TestExecWorkerOpusFraming(t *testing.T) {
	needShell(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newFakeOutput()
	w, err := (&Exec{Command: "exec cat"}).Start(ctx, Stream{Language: "es", Format: "opus"}, out)
	if err != nil {
		t.Fatal(err)
	}
	pkts := [][]byte{[]byte("a"), []byte("packet-two"), ramp(300, 1)}
	for _, p := range pkts {
		if err := w.Process(Chunk{Data: p}); err != nil {
			t.Fatal(err)
		}
	}
	out.waitFor(t, "three packets", func() bool { return len(out.audio) == len(pkts) })
	for i, p := range pkts {
		if !bytes.Equal(out.audio[i], p) {
			t.Errorf("packet %d: %q", i, out.audio[i])
		}
	}
	cancel()
	_ = w.Close()
}

func TestExecWorkerExitAndKill(t *testing.T) {
	needShell(t)
	// A command that exits on its own: Done closes, Close reports it.
	out := newFakeOutput()
	w, err := (&Exec{Command: "exit 3"}).Start(context.Background(), Stream{Language: "es", Format: "pcm16"}, out)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.(Exiter).Done():
	case <-time.After(wait):
		t.Fatal("Done not closed after the command exited")
	}
	if err := w.Process(Chunk{Data: []byte{1, 2}}); err == nil {
		t.Error("Process after exit: no error")
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Close: %v", err)
	}

	// A command that ignores its input and never ends is killed, with its
	// children, when the stream stops.
	ctx, cancel := context.WithCancel(context.Background())
	w, err = (&Exec{Command: "sleep 300 | sleep 300"}).Start(ctx, Stream{Language: "es", Format: "pcm16"}, newFakeOutput())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Close did not return: the command was not killed")
	}

	if _, err := (&Exec{}).Start(context.Background(), Stream{}, newFakeOutput()); err == nil {
		t.Error("an empty command started")
	}
}

// pcm16 output from a command runs at most MaxLead ahead of real time.
func TestExecPacesOutput(t *testing.T) {
	needShell(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newFakeOutput()
	began := time.Now()
	// Half a second of audio at once, with a lead of 100 ms.
	w, err := (&Exec{Command: "head -c 16000 /dev/zero", MaxLead: 100 * time.Millisecond}).Start(ctx, Stream{Language: "es", Format: "pcm16"}, out)
	if err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "all the audio", func() bool {
		n := 0
		for _, c := range out.audio {
			n += len(c)
		}
		return n == 16000
	})
	if took := time.Since(began); took < 350*time.Millisecond {
		t.Fatalf("0.5 s of audio published in %v: not paced", took)
	}
	cancel()
	_ = w.Close()
}

func TestCaptionTextFitsTheServerLimit(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("\xff", 3000),      // each bad byte would encode as 3
		strings.Repeat("é", 1500),         // cut on a rune boundary
		"a" + strings.Repeat("\xff", 999), // 1000 bytes, 2998 once encoded
	} {
		got := captionText(in)
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		_ = json.Unmarshal(b, &back)
		if len(back) > MaxCaptionBytes || !utf8.ValidString(got) {
			t.Errorf("caption of %d bytes arrives as %d bytes (limit %d)", len(in), len(back), MaxCaptionBytes)
		}
	}
}
