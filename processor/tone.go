package processor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

// Pcm16 format constants: what a pcm16 session carries.
const (
	SampleRate     = 16000
	BytesPerSecond = SampleRate * 2
)

// toneTable gives each common language its own note, so a listener hears at
// once which stream they are on.
var toneTable = map[string]float64{
	"en": 262, // C4
	"hi": 330, // E4
	"ar": 349, // F4
	"id": 370, // F#4
	"ru": 392, // G4
	"sw": 415, // G#4
	"es": 440, // A4
	"nl": 494, // B4
	"fr": 523, // C5
	"pl": 554, // C#5
	"de": 587, // D5
	"sv": 622, // D#5
	"it": 659, // E5
	"pt": 698, // F5
	"tr": 740, // F#5
	"zh": 784, // G5
	"uk": 831, // G#5
	"ja": 880, // A5
	"vi": 932, // A#5
	"ko": 988, // B5
}

// ToneFrequency is the tone mode's frequency for lang, in Hz: a note from a
// table for common languages, else one derived from a hash of the code
// (300 to 990 Hz in steps of 10).
func ToneFrequency(lang string) float64 {
	if f, ok := toneTable[lang]; ok {
		return f
	}
	h := fnv.New32a()
	h.Write([]byte(lang))
	return float64(300 + (h.Sum32()%70)*10)
}

// ToneGenerator synthesizes a continuous sine tone as pcm16 16 kHz mono.
type ToneGenerator struct {
	Freq      float64 // Hz
	Amplitude float64 // 0 to 1 of full scale
	phase     float64 // radians, carried across Fill calls
}

// Fill writes len(dst)/2 samples of the tone into dst (little-endian),
// continuing where the previous call stopped; an odd last byte is zeroed.
func (g *ToneGenerator) Fill(dst []byte) {
	step := 2 * math.Pi * g.Freq / SampleRate
	amp := g.Amplitude * math.MaxInt16
	for i := 0; i+1 < len(dst); i += 2 {
		v := int16(math.Round(amp * math.Sin(g.phase)))
		dst[i], dst[i+1] = byte(v), byte(uint16(v)>>8)
		g.phase += step
		if g.phase >= 2*math.Pi {
			g.phase -= 2 * math.Pi
		}
	}
	if len(dst)%2 == 1 {
		dst[len(dst)-1] = 0
	}
}

// Tone is the tone mode: it replaces each source chunk with a sine tone of
// the same length at a frequency of the target language (ToneFrequency), and
// captions "[es] tone 440 Hz" every CaptionEvery of audio. An Opus stream is
// decoded and its tone encoded (PCMOnly); a build without Opus cannot, and
// says so and passes the source through unchanged.
type Tone struct {
	// Frequencies override ToneFrequency for some languages.
	Frequencies map[string]float64
	// Amplitude of the tone, 0 to 1; 0 means 0.25.
	Amplitude float64
	// CaptionEvery is the audio time between captions; 0 means 2 s,
	// negative sends none.
	CaptionEvery time.Duration
}

// Start implements Translator.
func (t *Tone) Start(ctx context.Context, s Stream, out Output) (Worker, error) {
	if s.Format == protocol.CodecOpus {
		w, err := PCMOnly(TranslatorFunc(t.start)).Start(ctx, s, out)
		if errors.Is(err, opus.ErrUnavailable) {
			out.Logf("tone mode cannot make Opus audio (%v): passing the source through unchanged", err)
			return passthroughWorker(out), nil
		}
		return w, err
	}
	return t.start(ctx, s, out)
}

func (t *Tone) start(_ context.Context, s Stream, out Output) (Worker, error) {
	if s.Format != protocol.CodecPCM16 {
		out.Logf("tone mode cannot synthesize %s audio: passing the source through unchanged", s.Format)
		return passthroughWorker(out), nil
	}
	freq, ok := t.Frequencies[s.Language]
	if !ok {
		freq = ToneFrequency(s.Language)
	}
	amp := t.Amplitude
	if amp <= 0 || amp > 1 {
		amp = 0.25
	}
	every := t.CaptionEvery
	if every == 0 {
		every = 2 * time.Second
	}
	w := &toneWorker{
		out:     out,
		gen:     ToneGenerator{Freq: freq, Amplitude: amp},
		caption: fmt.Sprintf("[%s] tone %s Hz", s.Language, formatHz(freq)),
		every:   -1,
	}
	if every > 0 {
		w.every = int64(every) * BytesPerSecond / int64(time.Second)
	}
	return w, nil
}

func formatHz(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

type toneWorker struct {
	out     Output
	gen     ToneGenerator
	caption string
	every   int64 // bytes of audio between captions; negative: none
	since   int64 // bytes since the last caption
	started bool
}

func (w *toneWorker) Process(c Chunk) error {
	if len(c.Data) == 0 {
		return nil
	}
	buf := make([]byte, len(c.Data))
	w.gen.Fill(buf)
	w.out.Audio(buf)
	if w.every >= 0 && (!w.started || w.since >= w.every) {
		w.out.Caption(w.caption, true)
		w.started, w.since = true, 0
	}
	w.since += int64(len(buf))
	return nil
}

func (w *toneWorker) Close() error { return nil }

// Passthrough is the passthrough mode: it publishes the source unchanged as
// the translation, which exercises the whole loop (and the processing-lag
// metric) without any engine.
type Passthrough struct{}

// Start implements Translator.
func (Passthrough) Start(_ context.Context, _ Stream, out Output) (Worker, error) {
	return passthroughWorker(out), nil
}

func passthroughWorker(out Output) Worker {
	return WorkerFunc(func(c Chunk) error {
		out.Audio(c.Data)
		return nil
	})
}
