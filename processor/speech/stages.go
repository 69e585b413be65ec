package speech

import (
	"context"
	"errors"

	"github.com/pentecost/pentecost/processor"
)

// FrameSamples is the VAD's frame: 20 ms. The pipeline's audio is pcm16 at
// processor.SampleRate, mono: the session format of the wire protocol.
// Stages exchange it as []int16 samples.
const FrameSamples = processor.SampleRate / 50

// VAD tells speech from silence, one FrameSamples frame at a time. A VAD
// belongs to one session (it may adapt to that session's noise) and is
// called from one goroutine.
type VAD interface {
	Speech(frame []int16) bool
}

// Recognizer turns a session's speech into text.
type Recognizer interface {
	// Open prepares recognition of one session's speech in lang (an ISO
	// 639-1 code): a model loaded, a process warmed up. It fails, wrapping
	// ErrUnsupported, when the recognizer has no model for lang. ctx bounds
	// the Recognition's life; Close ends it sooner.
	Open(ctx context.Context, lang string) (Recognition, error)
}

// Recognition is one session's recognizer. Its methods are called from one
// goroutine.
type Recognition interface {
	// Begin starts an utterance: a stretch of speech the VAD found, whose
	// audio follows through Write while it is being spoken, so a streaming
	// recognizer can work as the speaker talks. partial, when the
	// recognizer can, receives interim text of the utterance so far (from
	// any goroutine, until End returns); it must not block.
	Begin(partial func(text string)) (Utterance, error)
	// Close releases what Open prepared; utterances not yet ended are
	// abandoned.
	Close() error
}

// Utterance is one stretch of speech being recognized.
type Utterance interface {
	// Write adds audio. It must not block on the recognizer: a slow engine
	// buffers (boundedly) or fails.
	Write(pcm []int16) error
	// End says the utterance is over and returns its text ("" when
	// nothing was recognized). It is called exactly once, even after a
	// failed Write; after it returns the utterance holds no resources.
	End(ctx context.Context) (string, error)
}

// TextTranslator translates text. Named so to keep it apart from
// processor.Translator, which the Pipeline is.
type TextTranslator interface {
	// Prepare checks that from → to can be translated and may warm up
	// for it (start a process, load a model). An error, typically
	// wrapping ErrUnsupported, means the language gets no translation; it
	// is logged once.
	Prepare(ctx context.Context, from, to string) error
	// Translate translates one sentence. Safe for concurrent use.
	Translate(ctx context.Context, text, from, to string) (string, error)
}

// Synthesizer speaks text.
type Synthesizer interface {
	// Prepare checks that lang can be spoken (a voice exists). An error
	// means the language gets captions but no voice; it is logged once.
	Prepare(ctx context.Context, lang string) error
	// Synthesize speaks text in lang, passing pcm16 16 kHz mono samples
	// to emit as they are produced (a streaming engine calls it many
	// times). Safe for concurrent use.
	Synthesize(ctx context.Context, text, lang string, emit func(pcm []int16)) error
}

// ErrUnsupported marks a language (or pair) a stage cannot handle.
var ErrUnsupported = errors.New("not supported")
