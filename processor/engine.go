package processor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/ctxtime"
	"github.com/pentecost/pentecost/protocol"
)

// Defaults of Options.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultQueueChunks       = 50 // 1 s of 20 ms chunks
	DefaultLinger            = 5 * time.Second
	DefaultMaxChunk          = 32768
	dialTimeout              = 15 * time.Second
	errorLogInterval         = 10 * time.Second
)

// MaxCaptionBytes is the server's limit on a caption's text (publishCaption
// is refused over it).
const MaxCaptionBytes = 2000

// Options configure an Engine.
type Options struct {
	// Server is the server's base URL: http(s)://host:port, ws(s)://host:port,
	// or host:port (see client.WSURL).
	Server string
	// Token returns the processor token (a JWT carrying the processor role)
	// for each new connection, so a long-running processor can mint fresh
	// ones. See StaticToken.
	Token func() (string, error)
	// Languages are the target languages this processor serves; empty
	// serves every language.
	Languages []string
	// CaptionsOnly attaches with audio=none: the processor publishes
	// captions only, and the listeners of its languages keep hearing the
	// source audio under them. Audio a Worker produces is not sent
	// (Stats.AudioWithheld); Stream.Audio tells the Worker so.
	CaptionsOnly bool
	// AudioLanguages, when not empty, limits translated audio to these
	// languages (audio=es,fr); the others it serves get captions only.
	// Each must be among Languages when Languages is set. Exclusive with
	// CaptionsOnly.
	AudioLanguages []string
	// Codec is the codec to take the sessions' audio in and publish
	// translations in (docs/protocol.md 7.4): "pcm16" (the server's
	// default) or "opus"; each Stream's Format says what a session gives.
	Codec string
	// Transcript attaches with transcript=true: the server may assign a
	// session's source language (when Languages is empty or names it)
	// while it has listeners, even when nobody listens in another
	// language. The engine then runs a Worker for it, whose Stream has
	// Language equal to SourceLanguage and Audio false; its captions and
	// transcript are the session's transcript, and the other workers' are
	// not published. The Translator must handle such a Stream.
	Transcript bool
	// Translator makes the workers.
	Translator Translator

	// Logf receives a human-readable line for everything the engine does:
	// connections, sessions, assignments, workers, server errors. It never
	// receives a token. Nil discards the lines.
	Logf func(format string, args ...any)
	// OnEvent, when set, receives every Event. It is called synchronously,
	// sometimes with the engine's lock held: it must not block or call the
	// Engine.
	OnEvent func(Event)

	// HeartbeatInterval between heartbeat messages on each connection; 0
	// means 30 s, negative sends none.
	HeartbeatInterval time.Duration
	// DeadAfter is how long a connection may go without any frame from the
	// server (acks, pings, audio) before it is taken for silently lost,
	// dropped and replaced; checked at every heartbeat. 0 means twice the
	// heartbeat interval plus 10 s (70 s by default).
	DeadAfter time.Duration
	// QueueChunks bounds each worker's queue of source chunks; when it is
	// full the oldest chunk is dropped. 0 means 50.
	QueueChunks int
	// Linger is how long a worker outlives the connection it was assigned
	// on, waiting for a new connection to be assigned the same language
	// (after a refresh or a reconnect), before it is stopped. 0 means 5 s;
	// negative stops at once.
	Linger time.Duration
	// Backoff spaces reconnection attempts (client.Backoff's defaults:
	// 250 ms doubling to 10 s, jittered).
	Backoff client.Backoff
	// RestartBackoff spaces the restarts of a worker that failed; zero
	// means 500 ms doubling to 30 s.
	RestartBackoff client.Backoff
	// MaxChunk is the server's audio chunk limit (--audio-max-chunk-bytes);
	// larger outputs are split. 0 means 32768.
	MaxChunk int
	// TLSConfig for wss:// servers with a private CA.
	TLSConfig *tls.Config
}

// StaticToken returns an Options.Token that always returns tok.
func StaticToken(tok string) func() (string, error) {
	return func() (string, error) { return tok, nil }
}

// EventKind names what an Event reports.
type EventKind string

// Event kinds.
const (
	EventAttached        EventKind = "attached"         // a connection got processorAttached (ConnectionID)
	EventDetached        EventKind = "detached"         // a connection ended (ConnectionID, Err)
	EventRefreshRequired EventKind = "refreshRequired"  // the server asked for a new connection (ConnectionID)
	EventSessionStarted  EventKind = "sessionStarted"   // a live session is known (SessionID)
	EventLanguages       EventKind = "languagesChanged" // a connection's languages of a session (ConnectionID, SessionID, Languages)
	EventSessionEnded    EventKind = "sessionEnded"     // SessionID
	EventWorkerStarted   EventKind = "workerStarted"    // a Worker was started (SessionID, Language)
	EventWorkerStopped   EventKind = "workerStopped"    // a worker was stopped for good (SessionID, Language)
	EventWorkerFailed    EventKind = "workerFailed"     // a Worker failed and will be restarted (SessionID, Language, Err)
	EventServerError     EventKind = "serverError"      // the server sent an error message (ConnectionID, Err)
	EventDropped         EventKind = "dropped"          // a worker's full queue dropped its oldest source chunk (SessionID, Language)
)

// Event is something the engine did or was told, for observers (tests, a
// status page).
type Event struct {
	Kind         EventKind
	ConnectionID string
	SessionID    string
	Language     string
	Languages    []string
	Err          error
}

// Stats are the engine's counters.
type Stats struct {
	Connections   int    // live connections
	Workers       int    // running workers
	SourceChunks  uint64 // source chunks queued for workers
	Dropped       uint64 // source chunks dropped by full worker queues or discarded at a worker restart
	AudioChunks   uint64 // translated audio frames published
	Captions      uint64 // captions and transcripts published
	Unrouted      uint64 // results dropped because no connection was serving their language
	AudioWithheld uint64 // audio chunks a worker made for a language served with captions only, not sent
	SendErrors    uint64 // results that failed to send
	Restarts      uint64 // workers restarted after failing
	UnknownStream uint64 // source frames of a stream no sessionStarted announced
}

// Engine is a translation processor: it attaches to a Pentecost server,
// runs one Worker per (session, target language) assigned to it, feeds
// them the session's source audio and publishes what they produce.
type Engine struct {
	o       Options
	started atomic.Bool
	errLog  *Throttle // server errors, by code

	mu       sync.Mutex
	runCtx   context.Context
	links    []*link // live connections, oldest first
	workers  map[key]*worker
	stopping bool
	wg       sync.WaitGroup // worker goroutines

	nSource, nDropped, nAudio, nCaptions, nUnrouted, nSendErr, nRestarts, nUnknown, nWithheld atomic.Uint64
}

type key struct{ session, lang string }

func (k key) String() string { return k.session + "/" + k.lang }

// New checks o and returns an Engine; Run starts it.
func New(o Options) (*Engine, error) {
	if o.Server == "" {
		return nil, errors.New("processor: no server URL")
	}
	if _, err := client.WSURL(o.Server, nil); err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	if o.Token == nil {
		return nil, errors.New("processor: no token source")
	}
	if o.Translator == nil {
		return nil, errors.New("processor: no translator")
	}
	langs, err := checkLanguages(o.Languages)
	if err != nil {
		return nil, err
	}
	o.Languages = langs
	audio, err := checkLanguages(o.AudioLanguages)
	if err != nil {
		return nil, err
	}
	for _, l := range audio {
		if len(langs) > 0 && !slices.Contains(langs, l) {
			return nil, fmt.Errorf("processor: audio language %q is not among the languages served (%s)", l, strings.Join(langs, ","))
		}
	}
	if o.CaptionsOnly && len(audio) > 0 {
		return nil, errors.New("processor: CaptionsOnly and AudioLanguages exclude each other")
	}
	o.AudioLanguages = audio
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 2*o.HeartbeatInterval + 10*time.Second
	}
	if o.QueueChunks <= 0 {
		o.QueueChunks = DefaultQueueChunks
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.RestartBackoff == (client.Backoff{}) {
		o.RestartBackoff = client.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second}
	}
	if o.MaxChunk <= 0 {
		o.MaxChunk = DefaultMaxChunk
	}
	return &Engine{o: o, workers: map[key]*worker{}, errLog: NewThrottle(errorLogInterval)}, nil
}

// checkLanguages lower-cases, checks, de-duplicates and sorts codes.
func checkLanguages(codes []string) ([]string, error) {
	out := make([]string, 0, len(codes))
	for _, l := range codes {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" {
			continue
		}
		if len(l) != 2 || l[0] < 'a' || l[0] > 'z' || l[1] < 'a' || l[1] > 'z' {
			return nil, fmt.Errorf("processor: language %q is not a two-letter ISO 639-1 code", l)
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out, nil
}

// serves reports whether the language filter admits lang.
func (e *Engine) serves(lang string) bool {
	return len(e.o.Languages) == 0 || slices.Contains(e.o.Languages, lang)
}

// sendsAudio reports whether the processor publishes audio for lang.
func (e *Engine) sendsAudio(lang string) bool {
	if e.o.CaptionsOnly {
		return false
	}
	return len(e.o.AudioLanguages) == 0 || slices.Contains(e.o.AudioLanguages, lang)
}

// audioParam is the attach's audio= value; "" leaves the server's default
// (audio for every language), which servers without the parameter have.
func (e *Engine) audioParam() string {
	switch {
	case e.o.CaptionsOnly:
		return "none"
	case len(e.o.AudioLanguages) > 0:
		return strings.Join(e.o.AudioLanguages, ",")
	}
	return ""
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	conns, workers := len(e.links), len(e.workers)
	e.mu.Unlock()
	return Stats{
		Connections:   conns,
		Workers:       workers,
		SourceChunks:  e.nSource.Load(),
		Dropped:       e.nDropped.Load(),
		AudioChunks:   e.nAudio.Load(),
		Captions:      e.nCaptions.Load(),
		Unrouted:      e.nUnrouted.Load(),
		AudioWithheld: e.nWithheld.Load(),
		SendErrors:    e.nSendErr.Load(),
		Restarts:      e.nRestarts.Load(),
		UnknownStream: e.nUnknown.Load(),
	}
}

func (e *Engine) logf(format string, args ...any) {
	if e.o.Logf != nil {
		e.o.Logf(format, args...)
	}
}

func (e *Engine) event(ev Event) {
	if e.o.OnEvent != nil {
		e.o.OnEvent(ev)
	}
}

func (e *Engine) languagesLabel() string {
	if len(e.o.Languages) == 0 {
		return "all"
	}
	return strings.Join(e.o.Languages, ",")
}

func (e *Engine) audioLabel() string {
	if a := e.audioParam(); a != "" {
		return a
	}
	return "all"
}

func (e *Engine) transcriptLabel(l *link) string {
	switch {
	case !e.o.Transcript:
		return ""
	case l.transcript:
		return ", transcript"
	}
	return ", transcript: not supported by this server (the transcript is published only while a target language is assigned)"
}

// Run attaches to the server and serves until ctx ends, which is the normal
// way to stop it (Run then returns nil after closing its connections and
// stopping its workers). It answers connectionRefreshRequired with a new
// connection, and reconnects with backoff after a drop. It returns an error
// only when the server refuses the processor for good: a bad or expired
// token, a token without the processor role, an unsupported language.
func (e *Engine) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("processor: Run called twice")
	}
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	defer e.shutdown()

	bo := e.o.Backoff
	var cur *link
	for {
		if cur == nil {
			l, err := e.dial(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if !retryable(err) {
					return fmt.Errorf("attach to %s: %w", e.o.Server, err)
				}
				d := bo.Next()
				e.logf("cannot attach to %s: %v; retrying in %v", e.o.Server, err, d.Round(time.Millisecond))
				if !ctxtime.Sleep(ctx, d) {
					return nil
				}
				continue
			}
			bo.Reset()
			cur = l
		}
		select {
		case <-ctx.Done():
			return nil
		case <-cur.done:
			d := bo.Next()
			e.logf("connection %s lost (%v); reconnecting in %v", cur.id, cur.err, d.Round(time.Millisecond))
			cur = nil
			if !ctxtime.Sleep(ctx, d) {
				return nil
			}
		case <-cur.refresh:
			nl := e.refresh(ctx, cur)
			if nl == nil {
				continue // cur ended or ctx is done: the next round handles it
			}
			old := cur
			cur = nl
			e.logf("handing over from connection %s to %s", old.id, nl.id)
			old.closing.Store(true)
			go old.c.Close()
		}
	}
}

// refresh opens the connection that replaces cur, retrying while cur lives.
// The caller closes cur once it has the new one: the server then hands
// cur's languages to the next attached processor in attach order, which is
// the new connection unless another processor attached in between (that
// one then serves them, as failover would have it). It returns nil when ctx
// ends, when cur ends first (Run then reconnects), or when the server
// refuses the new connection for good (cur serves on until it ends, and the
// reconnect reports the refusal).
func (e *Engine) refresh(ctx context.Context, cur *link) *link {
	bo := e.o.Backoff
	for {
		l, err := e.dial(ctx)
		if err == nil {
			return l
		}
		if ctx.Err() != nil {
			return nil
		}
		if !retryable(err) {
			e.logf("refresh: the server refused a new connection (%v); serving on connection %s until it ends", err, cur.id)
			return nil
		}
		d := bo.Next()
		e.logf("refresh: cannot attach a new connection (%v); retrying in %v", err, d.Round(time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-cur.done:
			t.Stop()
			return nil
		}
	}
}

// retryable reports whether attaching again may succeed where err failed.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true // our dial timeout, not the caller's context
	}
	var te *tokenError
	if errors.As(err, &te) {
		return false
	}
	return client.Retryable(err)
}

type tokenError struct{ err error }

func (e *tokenError) Error() string { return "get a processor token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// dial opens a connection and waits for processorAttached.
func (e *Engine) dial(ctx context.Context) (*link, error) {
	tok, err := e.o.Token()
	if err != nil {
		return nil, &tokenError{err}
	}
	q := url.Values{"action": {protocol.ActAttachProcessor}, "token": {tok}}
	if len(e.o.Languages) > 0 {
		q.Set("languages", strings.Join(e.o.Languages, ","))
	}
	if a := e.audioParam(); a != "" {
		q.Set("audio", a)
	}
	if e.o.Codec != "" {
		q.Set("codec", e.o.Codec)
	}
	if e.o.Transcript {
		q.Set("transcript", "true")
	}
	u, err := client.WSURL(e.o.Server, q)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.Dial(dctx, u, client.DialOptions{TLSConfig: e.o.TLSConfig})
	if err != nil {
		return nil, err
	}
	ev, err := c.Expect(dctx, protocol.TypeProcessorAttached)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	l := &link{
		e:        e,
		lastRecv: newAtomicTime(),
		c:        c,
		id:       ev.String("connectionId"),
		// A server that takes transcript processors says so; one that
		// ignored the parameter never assigns a source language.
		transcript: e.o.Transcript && ev.Bool("transcript"),
		refresh:    make(chan struct{}, 1),
		done:       make(chan struct{}),
		sessions:   map[string]sessionInfo{},
		streams:    map[uint16]string{},
		assigned:   map[string][]string{},
	}
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		c.CloseNow()
		return nil, context.Canceled
	}
	e.links = append(e.links, l)
	e.mu.Unlock()
	e.logf("attached to %s as a processor (connection %s, languages: %s, audio: %s%s)", e.o.Server, l.id, e.languagesLabel(), e.audioLabel(), e.transcriptLabel(l))
	e.event(Event{Kind: EventAttached, ConnectionID: l.id})
	go l.read()
	if e.o.HeartbeatInterval > 0 {
		go l.heartbeat(e.o.HeartbeatInterval, e.o.DeadAfter)
	}
	return l, nil
}

// shutdown closes every connection and stops every worker.
func (e *Engine) shutdown() {
	e.mu.Lock()
	e.stopping = true
	links := slices.Clone(e.links)
	for _, w := range e.workers {
		e.stopWorkerLocked(w)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.closing.Store(true)
			l.c.Close()
			<-l.done
		}()
	}
	wg.Wait()
	e.wg.Wait()
}

// linkGone forgets a connection that ended. Its workers linger for a while,
// in case another connection (the refresh's, the reconnect's) is assigned
// the same languages.
func (e *Engine) linkGone(l *link) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.links = slices.DeleteFunc(e.links, func(x *link) bool { return x == l })
	for sid, langs := range l.assigned {
		for _, lang := range langs {
			e.reconcileLocked(key{sid, lang}, true)
		}
	}
}

// ownerLocked is the newest live connection assigned k.
func (e *Engine) ownerLocked(k key) *link {
	for i := len(e.links) - 1; i >= 0; i-- {
		if slices.Contains(e.links[i].assigned[k.session], k.lang) {
			return e.links[i]
		}
	}
	return nil
}

// knownLocked reports whether a live connection knows the session.
func (e *Engine) knownLocked(sid string) bool {
	for _, l := range e.links {
		if _, ok := l.sessions[sid]; ok {
			return true
		}
	}
	return false
}

// reconcileLocked starts k's worker when a connection is assigned k and
// stops it when none is (after the linger, when linger is set).
func (e *Engine) reconcileLocked(k key, linger bool) {
	w := e.workers[k]
	if owner := e.ownerLocked(k); owner != nil && !e.stopping {
		if w != nil {
			w.stopLinger()
			return
		}
		info, ok := owner.sessions[k.session]
		if !ok {
			e.logf("session %s: assigned %s before its sessionStarted; ignored", k.session, k.lang)
			return
		}
		if k.lang == info.source && !e.o.Transcript {
			// Only a transcript processor is given the source language;
			// this is a target that just became the source (a PATCH), and
			// the languagesChanged taking it away follows.
			return
		}
		e.startWorkerLocked(k, Stream{SessionID: k.session, Language: k.lang, SourceLanguage: info.source, Format: info.format, PacketMs: info.packetMs,
			Audio: k.lang != info.source && e.sendsAudio(k.lang)})
		return
	}
	if w == nil {
		return
	}
	if linger && e.o.Linger > 0 && !e.stopping {
		if w.linger == nil {
			w.linger = time.AfterFunc(e.o.Linger, func() {
				e.mu.Lock()
				defer e.mu.Unlock()
				if e.workers[k] == w && w.linger != nil {
					w.linger = nil
					e.reconcileLocked(k, false)
				}
			})
		}
		return
	}
	e.stopWorkerLocked(w)
}

func (e *Engine) startWorkerLocked(k key, s Stream) {
	ctx, cancel := context.WithCancel(e.runCtx)
	w := &worker{e: e, k: k, stream: s, cancel: cancel, q: newQueue(e.o.QueueChunks)}
	e.workers[k] = w
	e.wg.Add(1)
	if s.Transcribes() {
		e.logf("session %s: starting %s worker (the transcript, %s)", k.session, k.lang, s.Format)
	} else {
		e.logf("session %s: starting %s worker (%s → %s, %s)", k.session, k.lang, s.SourceLanguage, s.Language, s.Format)
	}
	go w.run(ctx)
}

func (e *Engine) stopWorkerLocked(w *worker) {
	if e.workers[w.k] == w {
		delete(e.workers, w.k)
	}
	w.stopLinger()
	w.cancel()
}

// route finds the connection and stream id to publish k's results on.
func (e *Engine) route(k key) (*link, uint16, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.ownerLocked(k)
	if l == nil {
		return nil, 0, false
	}
	info, ok := l.sessions[k.session]
	return l, info.stream, ok
}

// transcriber reports whether k's worker is the one that publishes its
// session's transcript (src is the session's source language). The source
// language's worker is. Where the server could give this processor the
// source language (it attached with transcript=true, which the server
// acknowledged, and the filter admits src) no other worker is: the server
// gives the source language, while it has listeners, to one transcript
// processor, whose source worker publishes the transcript, once. Otherwise
// the running worker of the session with the first language in
// alphabetical order does.
func (e *Engine) transcriber(k key, src string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workers[k] == nil {
		return false
	}
	if k.lang == src {
		return true
	}
	if l := e.ownerLocked(k); l != nil && l.transcript && e.serves(src) {
		return false
	}
	for o := range e.workers {
		if o.session == k.session && o.lang != src && o.lang < k.lang {
			return false
		}
	}
	return true
}

// serverError logs an error message from the server, at most once per
// errorLogInterval per code.
func (e *Engine) serverError(l *link, ev client.Event) {
	code, msg := ev.String("code"), ev.String("message")
	e.event(Event{Kind: EventServerError, ConnectionID: l.id, Err: &client.ServerError{Code: code, Status: int(ev.Int("status")), Message: msg}})
	ok, suppressed := e.errLog.Allow("", code)
	if !ok {
		return
	}
	more := ""
	if suppressed > 0 {
		more = fmt.Sprintf(" (and %d more %s errors)", suppressed, code)
	}
	e.logf("server error on connection %s: %s: %s%s", l.id, code, msg, more)
}
