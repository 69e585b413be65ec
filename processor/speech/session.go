package speech

import (
	"context"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/processor"
)

// audioQueue bounds the source audio waiting for the session's VAD: 10 s of
// 20 ms chunks. The VAD keeps up with real time by orders of magnitude; the
// bound only matters if the machine stalls.
const audioQueue = 500

// resetGap is how far back (in chunks) a sequence number may jump before it
// is taken for a new numbering rather than a late duplicate: far more than
// any worker's queue holds.
const resetGap = 3000

// session is the shared pipeline of one live session (and source language):
// its VAD, its recognizer, its transcript, and the languages it translates
// into.
type session struct {
	p      *Pipeline
	key    sessionKey
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and the utterances being finished

	feedMu  sync.Mutex
	started bool
	next    uint32 // the sequence number expected next
	audio   chan audioChunk

	// mu guards langs; writers also hold the Pipeline's lock.
	mu    sync.RWMutex
	langs map[string]*language

	pubMu   sync.Mutex
	nextIdx int              // the sentence to publish next
	ready   map[int]recorded // recognized sentences waiting for earlier ones
}

type audioChunk struct {
	pcm []int16
	at  time.Time // when it reached the pipeline
}

// recorded is a sentence as the recognizer returned it.
type recorded struct {
	text      string
	err       error
	skip      bool // nothing to publish (too brief, or recognition never began)
	speechEnd time.Time
	took      time.Duration
}

// sentence is a recognized sentence on its way to a language.
type sentence struct {
	idx       int
	text      string
	speechEnd time.Time
	asrTook   time.Duration
}

// startSession is called with p.mu held.
func (p *Pipeline) startSession(k sessionKey) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		p: p, key: k, ctx: ctx, cancel: cancel,
		audio: make(chan audioChunk, audioQueue),
		langs: map[string]*language{},
		ready: map[int]recorded{},
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// stop ends the session's work and waits for it.
func (s *session) stop() {
	s.cancel()
	s.wg.Wait()
}

// removeLanguage reports whether l was the last language. Called with the
// Pipeline's lock held.
func (s *session) removeLanguage(l *language) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.langs[l.lang] == l {
		delete(s.langs, l.lang)
	}
	return len(s.langs) == 0
}

// feed takes a source chunk from any of the session's workers. Each worker
// sees the same chunks; the first copy of each sequence number is kept.
func (s *session) feed(c processor.Chunk) {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if s.started {
		if d := int32(c.Sequence - s.next); d < 0 && d > -resetGap {
			return
		}
	}
	s.started, s.next = true, c.Sequence+1
	pcm := wav.AppendSamples(nil, c.Data)
	// Sent under feedMu, so chunks queue in sequence order.
	select {
	case s.audio <- audioChunk{pcm: pcm, at: time.Now()}:
	default:
		s.p.tl.log(s.key.id, "audio", "session %s: the speech pipeline is falling behind: source audio dropped", s.key.id)
	}
}

// loop runs the VAD over the session's audio and streams each sentence to
// the recognizer while it is spoken.
func (s *session) loop() {
	defer s.wg.Done()
	o := &s.p.o
	rec, err := o.Recognizer.Open(s.ctx, s.key.source)
	if err != nil {
		if s.ctx.Err() == nil {
			s.p.logf("session %s: no speech recognition for source language %s: %v; no transcript or translation", s.key.id, s.key.source, err)
		}
		// Keep draining, so feed never reports falling behind.
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-s.audio:
			}
		}
	}
	defer rec.Close()
	seg := newSegmenter(o.NewVAD(), o.Segmenter)
	var (
		buf        []int16
		utt        Utterance
		writeErr   bool
		idx        int
		lastSpeech time.Time
	)
	for {
		var a audioChunk
		select {
		case <-s.ctx.Done():
			if utt != nil {
				_, _ = utt.End(s.ctx)
			}
			return
		case a = <-s.audio:
		}
		buf = append(buf, a.pcm...)
		off := 0
		for ; len(buf)-off >= FrameSamples; off += FrameSamples {
			frame := make([]int16, FrameSamples)
			copy(frame, buf[off:])
			st := seg.push(frame)
			if st.speech {
				lastSpeech = a.at
			}
			if st.begin {
				utt, writeErr = nil, false
				u, err := rec.Begin(s.partial(idx))
				if err != nil {
					s.p.tl.log(s.key.id, "asr-begin", "session %s: recognition failed: %s", s.key.id, describe(err))
				} else {
					utt = u
					for _, f := range st.pre {
						s.write(utt, f, &writeErr)
					}
				}
			}
			if st.write && utt != nil {
				s.write(utt, frame, &writeErr)
			}
			if st.end {
				if utt != nil {
					s.finish(idx, utt, st.tooBrief, lastSpeech)
				} else {
					s.deliver(idx, recorded{skip: true})
				}
				utt = nil
				idx++
			}
		}
		buf = append(buf[:0], buf[off:]...)
	}
}

func (s *session) write(u Utterance, frame []int16, failed *bool) {
	if *failed {
		return
	}
	if err := u.Write(frame); err != nil {
		*failed = true
		s.p.tl.log(s.key.id, "asr-write", "session %s: recognition failed: %s", s.key.id, describe(err))
	}
}

// finish ends an utterance in the background (a recognizer may take a
// while) and delivers its text in order.
func (s *session) finish(idx int, u Utterance, tooBrief bool, speechEnd time.Time) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.p.o.ASRTimeout)
		t0 := time.Now()
		text, err := u.End(ctx)
		cancel()
		s.deliver(idx, recorded{text: text, err: err, skip: tooBrief, speechEnd: speechEnd, took: time.Since(t0)})
	}()
}

// partial publishes interim text of sentence idx as an interim transcript,
// unless an earlier sentence is still being recognized (its final text,
// published later, would replace this one on listeners' screens).
func (s *session) partial(idx int) func(string) {
	return func(text string) {
		text = CleanText(text, processor.MaxCaptionBytes)
		if text == "" || s.ctx.Err() != nil {
			return
		}
		s.pubMu.Lock()
		defer s.pubMu.Unlock()
		if s.nextIdx != idx {
			return
		}
		for _, l := range s.transcribers() {
			l.transcript(text, false)
		}
	}
}

// deliver publishes recognized sentences in the order they were spoken.
func (s *session) deliver(idx int, r recorded) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.ready[idx] = r
	for {
		r, ok := s.ready[s.nextIdx]
		if !ok {
			return
		}
		delete(s.ready, s.nextIdx)
		s.publish(s.nextIdx, r)
		s.nextIdx++
	}
}

// publish is called with pubMu held.
func (s *session) publish(idx int, r recorded) {
	if s.ctx.Err() != nil || r.skip {
		return
	}
	p := s.p
	if r.err != nil {
		p.tl.log(s.key.id, "asr", "session %s: recognition of sentence %d failed: %s", s.key.id, idx, describe(r.err))
		p.report(Timing{SessionID: s.key.id, Sentence: idx, Stage: StageASR, SpeechEnd: r.speechEnd, Done: time.Now(), Took: r.took, Err: r.err})
		return
	}
	text := CleanText(r.text, processor.MaxCaptionBytes)
	if text == "" {
		return
	}
	p.report(Timing{SessionID: s.key.id, Sentence: idx, Stage: StageASR, SpeechEnd: r.speechEnd, Done: time.Now(), Took: r.took})
	sn := sentence{idx: idx, text: text, speechEnd: r.speechEnd, asrTook: r.took}
	for _, l := range s.transcribers() {
		l.transcript(text, true)
	}
	for _, l := range s.languages() {
		if !l.source {
			l.enqueue(sn)
		}
	}
}

func (s *session) languages() []*language {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ls := make([]*language, 0, len(s.langs))
	for _, l := range s.langs {
		ls = append(ls, l)
	}
	return ls
}

// transcribers are the languages whose Output is given the transcript: the
// source language's alone when the session has a worker for it (the
// server gave it this processor: the transcript is its job), else every
// language, of which the engine publishes one
// (processor.Output.Transcript).
func (s *session) transcribers() []*language {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.langs[s.key.source]; l != nil && l.source {
		return []*language{l}
	}
	ls := make([]*language, 0, len(s.langs))
	for _, l := range s.langs {
		ls = append(ls, l)
	}
	return ls
}
