package processor

import (
	"context"
	"time"
)

// Stream is the work of one Worker: one target language of one session,
// or, for an engine with Options.Transcript, its source language (Language
// equal to SourceLanguage: publish the transcript, no audio).
type Stream struct {
	SessionID      string
	Language       string // the target language this worker produces
	SourceLanguage string // the language the speaker speaks
	// Format is the audio's codec, both ways (sessionStarted's audioFormat):
	// "pcm16" (16-bit LE, 16 kHz, mono) or "opus" (one packet per chunk).
	Format string
	// PacketMs is the session's packet duration (sessionStarted's packetMs;
	// 0 from a server that does not say): Opus published for the session
	// should be cut into packets this long.
	PacketMs int
	// Audio is false when the processor publishes captions only for this
	// language (Options.CaptionsOnly, AudioLanguages, and always for the
	// source language): its listeners hear the source, Output.Audio sends
	// nothing, and the Worker should not synthesize any.
	Audio bool
}

// Transcribes reports whether the stream is the source language's: its
// worker publishes the session's transcript, and nothing else.
func (s Stream) Transcribes() bool { return s.Language == s.SourceLanguage }

// Chunk is one source chunk, as the speaker sent it.
type Chunk struct {
	// Data is the audio. It is shared with the other workers of the session:
	// read it, do not modify it.
	Data []byte
	// Sequence is the server's sequence number of the chunk in the source
	// stream; a gap means chunks were dropped on the way (by the server or by
	// this worker's queue).
	Sequence uint32
	// Ingest is when the server received the chunk from the speaker.
	Ingest time.Time
}

// Output is where a Worker delivers its results. Its methods are safe for
// concurrent use and may block while the connection to the server is slow.
// Results with nowhere to go (the language was just taken away, the
// connection is being re-established) are dropped and counted in Stats.
type Output interface {
	// Audio publishes translated audio in the session's format. Pcm16
	// chunks over the server's size limit are split; for opus, pass one
	// packet per call.
	Audio(chunk []byte)
	// Caption publishes a caption in the worker's target language; final
	// false marks an interim hypothesis that a later caption replaces.
	// For the source language's worker that is the transcript.
	Caption(text string, final bool)
	// Transcript publishes a caption in the session's source language
	// (what the speaker said), shown to source-language listeners. Every
	// worker of a session may call it; only one worker's transcript is
	// published, so listeners do not see it once per language: the source
	// language's worker's, when the engine transcribes (Options.Transcript)
	// and the server can assign it the source language; else the worker's
	// with the first target language in alphabetical order.
	Transcript(text string, final bool)
	// Logf logs a line about this worker (prefixed with its session and
	// language).
	Logf(format string, args ...any)
}

// Translator makes Workers. A real engine (a cloud speech-to-speech API, a
// local ASR → MT → TTS chain) plugs into the processor by implementing it.
type Translator interface {
	// Start begins translating one stream. ctx is cancelled when the
	// stream is no longer wanted (its listeners left, the session ended,
	// the processor stops); out receives the results. A returned error is
	// logged and Start is tried again after a backoff.
	Start(ctx context.Context, s Stream, out Output) (Worker, error)
}

// Worker translates one Stream.
type Worker interface {
	// Process hands the worker the next source chunk. Calls come from one
	// goroutine, in order. Process may block: while it does, the chunks
	// that arrive wait in a bounded queue that drops its oldest chunk when
	// full (Stats.Dropped), so a slow worker falls behind by at most the
	// queue and then skips ahead, as live audio must. An error ends the
	// worker: it is closed and started again after a backoff.
	Process(c Chunk) error
	// Close stops the worker (its Start context has been cancelled, or it
	// failed) and waits for it: after Close returns, the worker no longer
	// uses its Output. Its error is logged.
	Close() error
}

// Exiter is an optional interface of a Worker that can die on its own, such
// as an external process: when Done is closed, the engine closes the worker
// and starts a new one after a backoff.
type Exiter interface {
	Done() <-chan struct{}
}

// TranslatorFunc adapts a function to a Translator.
type TranslatorFunc func(ctx context.Context, s Stream, out Output) (Worker, error)

// Start calls f.
func (f TranslatorFunc) Start(ctx context.Context, s Stream, out Output) (Worker, error) {
	return f(ctx, s, out)
}

// WorkerFunc adapts a function to a Worker with nothing to close.
type WorkerFunc func(c Chunk) error

// Process calls f.
func (f WorkerFunc) Process(c Chunk) error { return f(c) }

// Close does nothing.
func (WorkerFunc) Close() error { return nil }
