package speech

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pentecost/pentecost/processor"
)

// Defaults of Options.
const (
	DefaultASRTimeout      = 15 * time.Second
	DefaultMTTimeout       = 10 * time.Second
	DefaultTTSTimeout      = 15 * time.Second
	DefaultPrepareTimeout  = 30 * time.Second
	DefaultMaxVoiceBacklog = 30 * time.Second
	DefaultErrorLogEvery   = 30 * time.Second
)

// Options configure a Pipeline.
type Options struct {
	// Recognizer turns the source speech into text; required.
	Recognizer Recognizer
	// Translator translates each sentence into the target languages; nil
	// publishes the transcript only, and gives each served language the
	// source audio unchanged.
	Translator TextTranslator
	// Synthesizer speaks the translations; nil publishes captions only
	// (no translated audio at all). Ignored without a Translator.
	Synthesizer Synthesizer
	// NewVAD makes a session's VAD; nil means an EnergyVAD.
	NewVAD func() VAD
	// Segmenter sets how speech is cut into sentences.
	Segmenter SegmenterConfig

	// Timeouts of one stage call; 0 means the Default* values.
	ASRTimeout, MTTimeout, TTSTimeout time.Duration
	// MaxVoiceBacklog bounds the synthesized speech waiting to be played
	// per language; past it the oldest is dropped (a voice that keeps
	// falling behind the speaker skips ahead). 0 means 30 s.
	MaxVoiceBacklog time.Duration

	// Logf receives the pipeline's lines: stage failures (throttled),
	// unsupported languages, and with LogTimings one line per sentence
	// and language. Lines never hold what was said, only timings and
	// errors. Nil discards them.
	Logf func(format string, args ...any)
	// LogTimings logs each sentence's latency per language.
	LogTimings bool
	// OnTiming, when set, receives every stage's timing (tests, metrics).
	// It is called from the pipeline's goroutines and must not block.
	OnTiming func(Timing)
	// ErrorLogEvery is the least time between two log lines of the same
	// failure; 0 means 30 s.
	ErrorLogEvery time.Duration
}

// Stage names in Timing.
const (
	StageASR   = "asr"   // the transcript of a sentence is known
	StageMT    = "mt"    // its translation was published as a caption
	StageVoice = "voice" // its synthesized speech started playing
)

// Timing reports one stage of one sentence.
type Timing struct {
	SessionID string
	Sentence  int    // index in the session, from 0
	Language  string // the target language; "" for StageASR
	Stage     string
	// SpeechEnd is when the last audio of the sentence's speech reached
	// the pipeline; Done is when the stage finished (for StageVoice, when
	// the first sample was published).
	SpeechEnd, Done time.Time
	// Took is the stage's own time: the recognizer's End, the translation
	// call, the synthesis until its first sample.
	Took time.Duration
	Err  error
}

// Pipeline is a processor.Translator that recognizes each session's speech
// once, publishes the transcript, translates each sentence into every
// language the server assigns and, with a Synthesizer, speaks it where the
// language is served with audio (processor.Stream.Audio).
//
// The engine runs one Worker per (session, language); the Pipeline joins
// the workers of a session to one shared session pipeline: every worker
// feeds it the source chunks it receives (duplicates, identified by
// sequence number, are dropped, so losing one worker's chunks loses
// nothing), one VAD and one recognizer run per session, and each worker
// publishes its own language's captions and voice. A worker for the source
// language itself (processor.Options.Transcript) only feeds the recognizer
// and publishes the transcript: a session whose listeners all speak the
// source language gets its transcript with no translation or synthesis.
type Pipeline struct {
	o  Options
	tl *throttle

	mu       sync.Mutex
	sessions map[sessionKey]*session
}

type sessionKey struct{ id, source string }

// New checks o and returns a Pipeline.
func New(o Options) (*Pipeline, error) {
	if o.Recognizer == nil {
		return nil, errors.New("speech: no recognizer")
	}
	if o.NewVAD == nil {
		o.NewVAD = func() VAD { return &EnergyVAD{} }
	}
	if o.ASRTimeout <= 0 {
		o.ASRTimeout = DefaultASRTimeout
	}
	if o.MTTimeout <= 0 {
		o.MTTimeout = DefaultMTTimeout
	}
	if o.TTSTimeout <= 0 {
		o.TTSTimeout = DefaultTTSTimeout
	}
	if o.MaxVoiceBacklog <= 0 {
		o.MaxVoiceBacklog = DefaultMaxVoiceBacklog
	}
	if o.ErrorLogEvery <= 0 {
		o.ErrorLogEvery = DefaultErrorLogEvery
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Translator == nil {
		o.Synthesizer = nil
	}
	return &Pipeline{o: o, tl: &throttle{logf: o.Logf, t: processor.NewThrottle(o.ErrorLogEvery)}, sessions: map[sessionKey]*session{}}, nil
}

// Start implements processor.Translator.
func (p *Pipeline) Start(ctx context.Context, s processor.Stream, out processor.Output) (processor.Worker, error) {
	if s.Format != "pcm16" {
		// Returning an error would restart the worker every 30 s, and log
		// it each time, for a session this pipeline can never handle.
		out.Logf("the speech pipeline handles pcm16 sessions only; this %s session gets no %s translation from it", s.Format, s.Language)
		return idle{}, nil
	}
	k := sessionKey{s.SessionID, s.SourceLanguage}
	p.mu.Lock()
	sess := p.sessions[k]
	if sess == nil {
		sess = p.startSession(k)
		p.sessions[k] = sess
	}
	l := sess.addLanguage(s, out)
	p.mu.Unlock()
	return l, nil
}

// leave takes a closed worker's language out of its session; the last one
// stops the session (a language that comes later starts a new one).
func (p *Pipeline) leave(l *language) {
	sess := l.sess
	p.mu.Lock()
	last := sess.removeLanguage(l)
	if last && p.sessions[sess.key] == sess {
		delete(p.sessions, sess.key)
	}
	p.mu.Unlock()
	if last {
		sess.stop()
		p.tl.t.Forget(sess.key.id)
	}
}

func (p *Pipeline) report(t Timing) {
	if p.o.OnTiming != nil {
		p.o.OnTiming(t)
	}
}

func (p *Pipeline) logf(format string, args ...any) { p.o.Logf(format, args...) }

// idle is the worker of a stream the pipeline cannot handle.
type idle struct{}

func (idle) Process(processor.Chunk) error { return nil }
func (idle) Close() error                  { return nil }

// describe shortens a stage error for a log line.
func describe(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out (%v)", err)
	default:
		return err.Error()
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
