package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/ctxtime"
	"github.com/pentecost/pentecost/protocol"
)

// dropLogInterval bounds how often a worker that falls behind says so.
const dropLogInterval = 10 * time.Second

var errExited = errors.New("worker exited")

// worker runs one Worker for one (session, language), restarting it when it
// fails, until its context ends.
type worker struct {
	e      *Engine
	k      key
	stream Stream
	cancel context.CancelFunc
	q      *queue
	linger *time.Timer // guarded by the engine's lock
}

func (w *worker) stopLinger() {
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
}

func (w *worker) logf(format string, args ...any) {
	w.e.logf("session %s: %s worker: "+format, append([]any{w.k.session, w.k.lang}, args...)...)
}

func (w *worker) run(ctx context.Context) {
	e := w.e
	defer e.wg.Done()
	bo := e.o.RestartBackoff
	for {
		out := &output{w: w, ctx: ctx}
		impl, err := e.o.Translator.Start(ctx, w.stream, out)
		if ctx.Err() != nil {
			if err == nil {
				_ = impl.Close()
			}
			break
		}
		if err != nil {
			d := bo.Next()
			w.logf("cannot start: %v; retrying in %v", err, d.Round(time.Millisecond))
			e.event(Event{Kind: EventWorkerFailed, SessionID: w.k.session, Language: w.k.lang, Err: err})
			if !ctxtime.Sleep(ctx, d) {
				break
			}
			continue
		}
		e.event(Event{Kind: EventWorkerStarted, SessionID: w.k.session, Language: w.k.lang})
		began := time.Now()
		why := w.feed(ctx, impl)
		cerr := impl.Close()
		if ctx.Err() != nil {
			if cerr != nil && !errors.Is(cerr, context.Canceled) {
				w.logf("closed: %v", cerr)
			}
			break
		}
		if errors.Is(why, errExited) && cerr != nil {
			why = fmt.Errorf("%w: %w", why, cerr)
		}
		e.nRestarts.Add(1)
		e.event(Event{Kind: EventWorkerFailed, SessionID: w.k.session, Language: w.k.lang, Err: why})
		if time.Since(began) > time.Minute {
			bo.Reset()
		}
		d := bo.Next()
		w.logf("failed (%v); restarting in %v", why, d.Round(time.Millisecond))
		if !ctxtime.Sleep(ctx, d) {
			break
		}
		// What queued meanwhile is stale: a live stream starts from now.
		e.nDropped.Add(uint64(w.q.clear()))
	}
	w.logf("stopped")
	e.event(Event{Kind: EventWorkerStopped, SessionID: w.k.session, Language: w.k.lang})
}

// feed hands queued chunks to impl until ctx ends or impl fails.
func (w *worker) feed(ctx context.Context, impl Worker) error {
	var exited <-chan struct{}
	if x, ok := impl.(Exiter); ok {
		exited = x.Done()
	}
	var lastLog time.Time
	logged := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			return errExited
		case <-w.q.ready:
		}
		for {
			c, ok := w.q.pop()
			if !ok {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if err := impl.Process(c); err != nil {
				return err
			}
			if d := w.q.droppedCount(); d > logged && time.Since(lastLog) >= dropLogInterval {
				w.logf("falling behind: %d source chunks dropped so far", d)
				logged, lastLog = d, time.Now()
			}
		}
	}
}

// queue is a bounded FIFO of source chunks that drops its oldest chunk when
// full.
type queue struct {
	mu      sync.Mutex
	buf     []Chunk
	max     int
	dropped int
	ready   chan struct{} // holds a token while the queue may be non-empty
}

func newQueue(max int) *queue {
	return &queue{max: max, ready: make(chan struct{}, 1)}
}

// push appends c and reports whether it dropped the oldest chunk for it.
func (q *queue) push(c Chunk) bool {
	q.mu.Lock()
	dropped := false
	if len(q.buf) >= q.max {
		q.buf[0] = Chunk{}
		q.buf = q.buf[1:]
		q.dropped++
		dropped = true
	}
	q.buf = append(q.buf, c)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped
}

func (q *queue) pop() (Chunk, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.buf) == 0 {
		return Chunk{}, false
	}
	c := q.buf[0]
	q.buf[0] = Chunk{}
	q.buf = q.buf[1:]
	return c, true
}

// clear empties the queue and returns how many chunks it discarded.
func (q *queue) clear() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.buf)
	q.buf = nil
	q.dropped += n
	return n
}

func (q *queue) droppedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// output is a worker's Output: it publishes on whichever connection is
// assigned the worker's language at the time.
type output struct {
	w   *worker
	ctx context.Context
}

func (o *output) Audio(b []byte) {
	e := o.w.e
	if len(b) == 0 || o.ctx.Err() != nil {
		return
	}
	if !o.w.stream.Audio {
		// The server would refuse it: captions only for this language.
		e.nWithheld.Add(1)
		return
	}
	l, stream, ok := e.route(o.w.k)
	if !ok {
		e.nUnrouted.Add(1)
		return
	}
	for len(b) > 0 {
		n := min(len(b), e.o.MaxChunk)
		frame := make([]byte, protocol.ProcessorHeaderSize+n)
		protocol.PutProcessorHeader(frame, stream, o.w.k.lang)
		copy(frame[protocol.ProcessorHeaderSize:], b[:n])
		if err := l.c.SendBinary(o.ctx, frame); err != nil {
			e.nSendErr.Add(1)
			return
		}
		e.nAudio.Add(1)
		b = b[n:]
	}
}

func (o *output) Caption(text string, final bool) { o.caption(o.w.k.lang, text, final) }

// Transcript publishes only from the session's transcriber: every worker
// of a session hears the same speech, and source-language listeners want it
// once.
func (o *output) Transcript(text string, final bool) {
	if !o.w.e.transcriber(o.w.k, o.w.stream.SourceLanguage) {
		return
	}
	o.caption(o.w.stream.SourceLanguage, text, final)
}

// captionMessage is publishCaption; final is always sent.
type captionMessage struct {
	Action         string `json:"action"`
	SessionID      string `json:"sessionId"`
	TargetLanguage string `json:"targetLanguage"`
	Text           string `json:"text"`
	Final          bool   `json:"final"`
}

func (o *output) caption(lang, text string, final bool) {
	e := o.w.e
	if o.ctx.Err() != nil || lang == "" {
		return
	}
	l, _, ok := e.route(o.w.k)
	if !ok {
		e.nUnrouted.Add(1)
		return
	}
	err := l.c.Send(o.ctx, captionMessage{
		Action:         protocol.ActPublishCaption,
		SessionID:      o.w.k.session,
		TargetLanguage: lang,
		Text:           captionText(text),
		Final:          final,
	})
	if err != nil {
		e.nSendErr.Add(1)
		return
	}
	e.nCaptions.Add(1)
}

func (o *output) Logf(format string, args ...any) { o.w.logf(format, args...) }

// captionText fits text to the server's caption limit. Invalid UTF-8 is
// replaced first: JSON encoding would turn each bad byte into a 3-byte
// U+FFFD, pushing a text cut to the limit over it.
func captionText(text string) string {
	return pentecost.Truncate(strings.ToValidUTF8(text, "\uFFFD"), MaxCaptionBytes)
}
