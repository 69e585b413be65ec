package speech

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pentecost/pentecost/processor"
)

// languageQueue bounds the sentences waiting for translation, and the
// translations waiting for synthesis, per language. A stage slower than the
// speaker loses the oldest: live captions skip ahead rather than lag.
const languageQueue = 16

// language is one target language of a session, or its source language
// (the transcript only): the processor.Worker the engine runs for it.
type language struct {
	p    *Pipeline
	sess *session
	lang string
	out  processor.Output
	// source: the session's source language, whose worker publishes the
	// transcript and nothing else. audio: the language is served with
	// audio (processor.Stream.Audio); without it nothing is synthesized.
	source, audio bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sentences chan sentence
	speak     chan speakJob
	voiceOn   atomic.Bool // the synthesizer is ready: publish the voice stream
	voice     voiceQueue
	closed    sync.Once

	// outMu lets the session publish transcripts on out while the
	// language is live; Close takes it to make sure nothing does after.
	outMu sync.RWMutex
	gone  bool
}

type speakJob struct {
	sentence
	translation string
	captionAt   time.Time
	mtTook      time.Duration
}

// addLanguage is called with the Pipeline's lock held.
func (s *session) addLanguage(st processor.Stream, out processor.Output) *language {
	ctx, cancel := context.WithCancel(s.ctx)
	lang := st.Language
	l := &language{
		p: s.p, sess: s, lang: lang, out: out, ctx: ctx, cancel: cancel,
		source: st.Transcribes(), audio: st.Audio && !st.Transcribes(),
		sentences: make(chan sentence, languageQueue),
		speak:     make(chan speakJob, languageQueue),
	}
	l.voice.max = int(s.p.o.MaxVoiceBacklog.Seconds() * processor.SampleRate)
	s.mu.Lock()
	if old := s.langs[lang]; old != nil {
		// The engine runs one worker per language; a second one means the
		// first is on its way out. The newer one gets the sentences.
		old.cancel()
	}
	s.langs[lang] = l
	s.mu.Unlock()
	if l.source {
		return l // the transcript: the session publishes it through out
	}
	l.wg.Add(1)
	go l.translateLoop()
	if l.speaks() {
		l.wg.Add(1)
		go l.speakLoop()
	}
	return l
}

// speaks reports whether the language's translations are synthesized: a
// synthesizer exists and the language is served with audio. A language
// served with captions only never calls the synthesizer: the engine would
// throw the audio away.
func (l *language) speaks() bool { return l.p.o.Synthesizer != nil && l.audio }

// Process implements processor.Worker: the chunk goes to the session's
// recognizer, and the voice stream advances by the chunk's length.
//
// The voice is clocked by the source: each source chunk releases as much
// synthesized speech (or silence, when there is none) as it holds. The
// translated stream is thus continuous and real-time paced without a timer,
// one translated chunk answers each source chunk (so the server's
// processing-lag pairing holds), and it stops when the speaker stops.
//
// Without a translator (the transcript only), a language served with audio
// is given the source audio unchanged: its listeners hear the speaker
// rather than silence. The source language's worker only feeds the
// recognizer.
func (l *language) Process(c processor.Chunk) error {
	l.sess.feed(c)
	if l.source || !l.audio {
		return nil
	}
	if l.p.o.Translator == nil {
		l.out.Audio(c.Data)
		return nil
	}
	if !l.voiceOn.Load() || len(c.Data) < 2 {
		return nil
	}
	pcm := make([]int16, len(c.Data)/2)
	started := l.voice.pull(pcm)
	l.out.Audio(PCMBytes(pcm))
	for _, f := range started {
		f()
	}
	return nil
}

// Close implements processor.Worker.
func (l *language) Close() error {
	l.closed.Do(func() {
		l.cancel()
		l.outMu.Lock()
		l.gone = true
		l.outMu.Unlock()
		l.p.leave(l)
		l.wg.Wait()
	})
	return nil
}

// transcript publishes the session's transcript through this language's
// Output, unless the language has left.
func (l *language) transcript(text string, final bool) {
	l.outMu.RLock()
	defer l.outMu.RUnlock()
	if !l.gone {
		l.out.Transcript(text, final)
	}
}

// enqueue hands a recognized sentence to the language, dropping the oldest
// waiting one when the translator is behind.
func (l *language) enqueue(sn sentence) {
	for {
		select {
		case l.sentences <- sn:
			return
		default:
		}
		select {
		case <-l.sentences:
			l.p.tl.log(l.sess.key.id, "mt-behind/"+l.lang, "session %s: %s: translation is falling behind: a sentence was skipped", l.sess.key.id, l.lang)
		default:
		}
	}
}

func (l *language) translateLoop() {
	defer l.wg.Done()
	p, sid, src := l.p, l.sess.key.id, l.sess.key.source
	mt := p.o.Translator
	if mt != nil {
		ctx, cancel := context.WithTimeout(l.ctx, DefaultPrepareTimeout)
		err := mt.Prepare(ctx, src, l.lang)
		cancel()
		if err != nil {
			if l.ctx.Err() == nil {
				p.logf("session %s: no %s → %s translation: %s; %s listeners get no captions or voice from this processor", sid, src, l.lang, describe(err), l.lang)
			}
			mt = nil
		}
	}
	for {
		var sn sentence
		select {
		case <-l.ctx.Done():
			return
		case sn = <-l.sentences:
		}
		if mt == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, p.o.MTTimeout)
		t0 := time.Now()
		tr, err := mt.Translate(ctx, sn.text, src, l.lang)
		cancel()
		took := time.Since(t0)
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			p.tl.log("", "mt/"+l.lang, "session %s: %s translation of sentence %d failed: %s", sid, l.lang, sn.idx, describe(err))
			p.report(Timing{SessionID: sid, Sentence: sn.idx, Language: l.lang, Stage: StageMT, SpeechEnd: sn.speechEnd, Done: time.Now(), Took: took, Err: err})
			continue
		}
		tr = CleanText(tr, processor.MaxCaptionBytes)
		if tr == "" {
			continue
		}
		l.out.Caption(tr, true)
		now := time.Now()
		p.report(Timing{SessionID: sid, Sentence: sn.idx, Language: l.lang, Stage: StageMT, SpeechEnd: sn.speechEnd, Done: now, Took: took})
		if !l.speaks() {
			if p.o.LogTimings {
				p.logf("session %s: %s: sentence %d: caption %s after the speech ended (recognition %s, translation %s)",
					sid, l.lang, sn.idx, secs(now.Sub(sn.speechEnd)), secs(sn.asrTook), secs(took))
			}
			continue
		}
		job := speakJob{sentence: sn, translation: tr, captionAt: now, mtTook: took}
		for queued := false; !queued; {
			select {
			case l.speak <- job:
				queued = true
			default:
				select {
				case <-l.speak:
					p.tl.log(sid, "tts-behind/"+l.lang, "session %s: %s: speech synthesis is falling behind: a sentence was not spoken", sid, l.lang)
				default:
				}
			}
		}
	}
}

func (l *language) speakLoop() {
	defer l.wg.Done()
	p, sid := l.p, l.sess.key.id
	tts := p.o.Synthesizer
	ctx, cancel := context.WithTimeout(l.ctx, DefaultPrepareTimeout)
	err := tts.Prepare(ctx, l.lang)
	cancel()
	if err != nil {
		if l.ctx.Err() == nil {
			p.logf("session %s: no %s voice: %s; %s listeners get captions only", sid, l.lang, describe(err), l.lang)
		}
		return
	}
	l.voiceOn.Store(true)
	for {
		var job speakJob
		select {
		case <-l.ctx.Done():
			return
		case job = <-l.speak:
		}
		ctx, cancel := context.WithTimeout(l.ctx, p.o.TTSTimeout)
		t0 := time.Now()
		var first time.Duration
		got := false
		err := tts.Synthesize(ctx, job.translation, l.lang, func(pcm []int16) {
			var onStart func()
			if !got {
				got, first = true, time.Since(t0)
				onStart = l.voiceStarted(job, first)
			}
			if n := l.voice.push(job.idx, pcm, onStart); n > 0 {
				p.tl.log(sid, "voice-backlog/"+l.lang, "session %s: %s: the voice is over %v behind the speaker: %.1f s of it skipped",
					sid, l.lang, p.o.MaxVoiceBacklog, float64(n)/processor.SampleRate)
			}
		})
		cancel()
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			p.tl.log("", "tts/"+l.lang, "session %s: %s speech synthesis of sentence %d failed: %s", sid, l.lang, job.idx, describe(err))
			if !got {
				p.report(Timing{SessionID: sid, Sentence: job.idx, Language: l.lang, Stage: StageVoice, SpeechEnd: job.speechEnd, Done: time.Now(), Took: time.Since(t0), Err: err})
			}
		}
	}
}

// voiceStarted returns what to do when the first sample of job's voice is
// published.
func (l *language) voiceStarted(job speakJob, ttsTook time.Duration) func() {
	return func() {
		p, now := l.p, time.Now()
		p.report(Timing{SessionID: l.sess.key.id, Sentence: job.idx, Language: l.lang, Stage: StageVoice, SpeechEnd: job.speechEnd, Done: now, Took: ttsTook})
		if p.o.LogTimings {
			p.logf("session %s: %s: sentence %d: caption %s, voice %s after the speech ended (recognition %s, translation %s, synthesis %s)",
				l.sess.key.id, l.lang, job.idx, secs(job.captionAt.Sub(job.speechEnd)), secs(now.Sub(job.speechEnd)),
				secs(job.asrTook), secs(job.mtTook), secs(ttsTook))
		}
	}
}

// voiceQueue holds synthesized speech until the source clock releases it.
type voiceQueue struct {
	mu    sync.Mutex
	clips []*clip
	n     int // samples queued
	max   int
}

type clip struct {
	sentence int
	pcm      []int16
	onStart  func() // called when its first sample is released
}

// push queues pcm as part of sentence's voice and returns how many queued
// samples it dropped to stay within the bound (the oldest first).
func (q *voiceQueue) push(sentence int, pcm []int16, onStart func()) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if k := len(q.clips); k > 0 && q.clips[k-1].sentence == sentence && onStart == nil {
		c := q.clips[k-1]
		c.pcm = append(c.pcm, pcm...)
	} else {
		q.clips = append(q.clips, &clip{sentence: sentence, pcm: append([]int16(nil), pcm...), onStart: onStart})
	}
	q.n += len(pcm)
	dropped := 0
	for q.max > 0 && q.n > q.max && len(q.clips) > 0 {
		drop := min(len(q.clips[0].pcm), q.n-q.max)
		q.clips[0].pcm = q.clips[0].pcm[drop:]
		q.n -= drop
		dropped += drop
		if len(q.clips[0].pcm) == 0 {
			q.clips = q.clips[1:]
		}
	}
	return dropped
}

// pull fills dst with queued speech, silence past its end, and returns the
// onStart callbacks of the clips that began.
func (q *voiceQueue) pull(dst []int16) []func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	var started []func()
	i := 0
	for i < len(dst) && len(q.clips) > 0 {
		c := q.clips[0]
		if c.onStart != nil {
			started = append(started, c.onStart)
			c.onStart = nil
		}
		n := copy(dst[i:], c.pcm)
		c.pcm = c.pcm[n:]
		q.n -= n
		i += n
		if len(c.pcm) == 0 {
			q.clips = q.clips[1:]
		}
	}
	clear(dst[i:])
	return started
}
