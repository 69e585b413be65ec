package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// wait bounds every wait in these tests; it is a deadlock guard, never a
// timing assertion.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// recorder collects an engine's events and lets a test wait for one.
type recorder struct {
	mu  sync.Mutex
	evs []Event
	at  []time.Time   // when each event happened
	ch  chan struct{} // closed and replaced on every event
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{})} }

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	r.at = append(r.at, time.Now())
	close(r.ch)
	r.ch = make(chan struct{})
}

// wait returns the first event matching at index from or later, and the
// index after it.
func (r *recorder) wait(t *testing.T, from int, what string, match func(Event) bool) (Event, int) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.evs); i++ {
			if match(r.evs[i]) {
				ev := r.evs[i]
				r.mu.Unlock()
				return ev, i + 1
			}
		}
		from = len(r.evs)
		ch := r.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// when returns the time of the event before index next (as returned by
// wait).
func (r *recorder) when(next int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at[next-1]
}

func (r *recorder) count(match func(Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func is(kind EventKind, sid, lang string) func(Event) bool {
	return func(ev Event) bool {
		return ev.Kind == kind && (sid == "" || ev.SessionID == sid) && (lang == "" || ev.Language == lang)
	}
}

func langsAre(conn, sid string, want ...string) func(Event) bool {
	return func(ev Event) bool {
		return ev.Kind == EventLanguages && ev.SessionID == sid && (conn == "" || ev.ConnectionID == conn) && slices.Equal(ev.Languages, want)
	}
}

type engine struct {
	*Engine
	rec  *recorder
	stop func() error // cancels Run and returns its result
	conn string       // the first connection's id
}

// startEngine runs an engine against n until the test ends (or stop).
func startEngine(t *testing.T, n *testserver.Node, tr Translator, mutate func(*Options)) *engine {
	t.Helper()
	tok, err := n.Srv.Auth.Mint("reference-processor", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	o := Options{
		Server:         n.URL,
		Token:          StaticToken(tok),
		Translator:     tr,
		Logf:           func(f string, a ...any) { t.Logf("processor: "+f, a...) },
		OnEvent:        rec.add,
		Backoff:        client.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		RestartBackoff: client.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	}
	if mutate != nil {
		mutate(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(wait):
				t.Errorf("Run did not return after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ev, _ := rec.wait(t, 0, "attached", is(EventAttached, "", ""))
	return &engine{Engine: e, rec: rec, stop: stop, conn: ev.ConnectionID}
}

func dial(t *testing.T, n *testserver.Node, kv ...string) *client.Conn {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	c, err := client.Dial(testCtx(t), n.WS(v.Encode()), client.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	return c
}

func expect(t *testing.T, c *client.Conn, typ string) client.Event {
	t.Helper()
	ev, err := c.Expect(testCtx(t), typ)
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	return ev
}

func speaker(t *testing.T, n *testserver.Node, format string) (*client.Conn, string) {
	t.Helper()
	c := dial(t, n, "action", "createSession", "sourceLanguage", "en", "audioFormat", format, "token", n.Token("alice"))
	return c, expect(t, c, "sessionCreated").String("sessionId")
}

func listener(t *testing.T, n *testserver.Node, sid, lang string) (*client.Conn, client.Event) {
	t.Helper()
	c := dial(t, n, "sessionId", sid, "targetLanguage", lang)
	return c, expect(t, c, "sessionJoined")
}

func send(t *testing.T, c *client.Conn, chunk []byte) {
	t.Helper()
	if err := c.SendBinary(testCtx(t), chunk); err != nil {
		t.Fatal(err)
	}
}

// nextTranslated reads until a translated audio frame, failing on a source
// frame or a languageChanged to untranslated; captions go to captions.
func nextTranslated(t *testing.T, c *client.Conn, captions *[]client.Event) *client.AudioFrame {
	t.Helper()
	for {
		ev, err := c.Next(testCtx(t))
		if err != nil {
			t.Fatalf("listener: %v", err)
		}
		switch {
		case ev.Audio != nil && ev.Audio.Header.Kind == 1:
			return ev.Audio
		case ev.Audio != nil:
			t.Fatalf("listener got source audio (kind 0): the language is not translated")
		case ev.Type == "languageChanged" && !ev.Bool("translated"):
			t.Fatalf("listener fell back to the source: %v", ev.JSON)
		case ev.Type == "caption" && captions != nil:
			*captions = append(*captions, ev)
		}
	}
}

func ramp(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) + seed
	}
	return b
}

// The full loop in tone mode: speaker → processor → listeners hear a tone of
// the source chunk's length at their language's frequency, with a caption.
func TestToneLoop(t *testing.T) {
	n := testserver.Start(t, nil)
	e := startEngine(t, n, &Tone{}, nil)
	sp, sid := speaker(t, n, "pcm16")
	e.rec.wait(t, 0, "sessionStarted", is(EventSessionStarted, sid, ""))

	es, joined := listener(t, n, sid, "es")
	if !joined.Bool("translated") {
		t.Fatalf("sessionJoined.translated = false with a processor attached: %v", joined.JSON)
	}
	fr, _ := listener(t, n, sid, "fr")
	e.rec.wait(t, 0, "languages es, fr", langsAre(e.conn, sid, "es", "fr"))

	src := ramp(640, 3)
	send(t, sp, src)
	for _, tc := range []struct {
		c    *client.Conn
		lang string
		hz   float64
	}{{es, "es", 440}, {fr, "fr", 523}} {
		var captions []client.Event
		f := nextTranslated(t, tc.c, &captions)
		want := make([]byte, len(src))
		(&ToneGenerator{Freq: tc.hz, Amplitude: 0.25}).Fill(want)
		if len(f.Chunk) != len(src) || !bytes.Equal(f.Chunk, want) {
			t.Fatalf("%s: got %d bytes, want the %v Hz tone of %d bytes", tc.lang, len(f.Chunk), tc.hz, len(src))
		}
		for len(captions) == 0 {
			captions = append(captions, expect(t, tc.c, "caption"))
		}
		c := captions[0]
		if want := "[" + tc.lang + "] tone " + formatHz(tc.hz) + " Hz"; c.String("text") != want || !c.Bool("final") || c.String("targetLanguage") != tc.lang {
			t.Fatalf("%s caption: %v, want %q", tc.lang, c.JSON, want)
		}
	}
	// More chunks keep the tone continuous across chunk boundaries.
	send(t, sp, ramp(640, 9))
	f := nextTranslated(t, es, nil)
	want := make([]byte, 1280)
	(&ToneGenerator{Freq: 440, Amplitude: 0.25}).Fill(want)
	if !bytes.Equal(f.Chunk, want[640:]) {
		t.Fatal("second es chunk does not continue the tone")
	}
	if st := e.Stats(); st.AudioChunks < 1 || st.Workers != 2 || st.Connections != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func needShell(t *testing.T) {
	for _, tool := range []string{"sh", "cat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
}

// Exec mode with cat: the listener hears exactly the source bytes, perhaps
// re-chunked; the command sees the stream's environment and may caption via
// stderr.
func TestExecCat(t *testing.T) {
	needShell(t)
	t.Setenv("PENTECOST_TOKEN", "must-not-reach-the-command")
	n := testserver.Start(t, nil)
	cmd := `echo "caption: $PENTECOST_SESSION_ID $PENTECOST_LANGUAGE $PENTECOST_SOURCE_LANGUAGE $PENTECOST_AUDIO_FORMAT $PENTECOST_SAMPLE_RATE ${PENTECOST_TOKEN:-unset}" >&2; exec cat`
	e := startEngine(t, n, &Exec{Command: cmd}, func(o *Options) { o.Languages = []string{"es"} })
	sp, sid := speaker(t, n, "pcm16")
	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, 0, "worker started", is(EventWorkerStarted, sid, "es"))

	var src []byte
	for i := range 20 {
		chunk := ramp(640, byte(i*7))
		src = append(src, chunk...)
		send(t, sp, chunk)
	}
	var got []byte
	var captions []client.Event
	for len(got) < len(src) {
		got = append(got, nextTranslated(t, es, &captions).Chunk...)
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("exec cat: got %d bytes, not the %d source bytes", len(got), len(src))
	}
	for len(captions) == 0 {
		captions = append(captions, expect(t, es, "caption"))
	}
	if want := sid + " es en pcm16 16000 unset"; captions[0].String("text") != want || !captions[0].Bool("final") {
		t.Fatalf("caption from stderr: %v, want %q", captions[0].JSON, want)
	}
}

// A command that exits early is restarted.
func TestExecRestartsACommandThatExits(t *testing.T) {
	needShell(t)
	n := testserver.Start(t, nil)
	e := startEngine(t, n, &Exec{Command: "head -c 1280 >/dev/null"}, nil)
	sp, sid := speaker(t, n, "pcm16")
	listener(t, n, sid, "es")
	e.rec.wait(t, 0, "worker started", is(EventWorkerStarted, sid, "es"))
	for i := range 3 {
		send(t, sp, ramp(640, byte(i)))
	}
	_, i := e.rec.wait(t, 0, "worker failed", is(EventWorkerFailed, sid, "es"))
	e.rec.wait(t, i, "worker restarted", is(EventWorkerStarted, sid, "es"))
	if st := e.Stats(); st.Restarts < 1 {
		t.Fatalf("stats %+v", st)
	}
}

// countingTranslator is a passthrough that counts its workers' starts and
// closes per language.
type countingTranslator struct {
	mu     sync.Mutex
	starts map[string]int
	closes map[string]int
}

func newCounting() *countingTranslator {
	return &countingTranslator{starts: map[string]int{}, closes: map[string]int{}}
}

func (c *countingTranslator) Start(_ context.Context, s Stream, out Output) (Worker, error) {
	c.mu.Lock()
	c.starts[s.Language]++
	c.mu.Unlock()
	return &countingWorker{c: c, lang: s.Language, out: out}, nil
}

func (c *countingTranslator) counts(lang string) (starts, closes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts[lang], c.closes[lang]
}

type countingWorker struct {
	c    *countingTranslator
	lang string
	out  Output
}

func (w *countingWorker) Process(c Chunk) error { w.out.Audio(c.Data); return nil }
func (w *countingWorker) Close() error {
	w.c.mu.Lock()
	w.c.closes[w.lang]++
	w.c.mu.Unlock()
	return nil
}

// Workers follow demand: a language whose last listener leaves loses its
// worker; the session's end stops the rest.
func TestWorkersFollowListeners(t *testing.T) {
	n := testserver.Start(t, nil)
	tr := newCounting()
	e := startEngine(t, n, tr, nil)
	sp, sid := speaker(t, n, "pcm16")
	es, _ := listener(t, n, sid, "es")
	fr, _ := listener(t, n, sid, "fr")
	listener(t, n, sid, "en") // the source language needs no worker
	e.rec.wait(t, 0, "languages es, fr", langsAre(e.conn, sid, "es", "fr"))
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	e.rec.wait(t, 0, "fr worker", is(EventWorkerStarted, sid, "fr"))

	fr.Close()
	_, i := e.rec.wait(t, 0, "languages es", langsAre(e.conn, sid, "es"))
	e.rec.wait(t, i, "fr worker stopped", is(EventWorkerStopped, sid, "fr"))
	if s, c := tr.counts("fr"); s != 1 || c != 1 {
		t.Fatalf("fr worker: %d starts, %d closes", s, c)
	}
	if e.rec.count(is(EventWorkerStopped, sid, "es")) != 0 {
		t.Fatal("es worker stopped with its listener still there")
	}
	send(t, sp, []byte("still-here"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "still-here" {
		t.Fatalf("es after fr left: %q", f.Chunk)
	}
	if s, _ := tr.counts("en"); s != 0 {
		t.Fatal("a worker was started for the source language")
	}

	if err := sp.Send(testCtx(t), map[string]any{"action": "endSession"}); err != nil {
		t.Fatal(err)
	}
	e.rec.wait(t, 0, "session ended", is(EventSessionEnded, sid, ""))
	e.rec.wait(t, 0, "es worker stopped", is(EventWorkerStopped, sid, "es"))
	if st := e.Stats(); st.Workers != 0 {
		t.Fatalf("workers after the session ended: %+v", st)
	}
}

// refreshConfig makes connections ask for a refresh after 10 minutes of the
// fake clock, with no idle close, warning or hard maximum in the way.
func refreshConfig(c *server.Config) {
	c.ConnectionRefreshAfter = 10 * time.Minute
	c.ConnectionWarningAfter = 0
	c.ConnectionMaxDuration = 0
	c.HeartbeatTimeout = 24 * time.Hour
}

// connectionRefreshRequired: the engine opens a new connection, closes the
// old one once the new one is attached, and the server hands the language
// over without the listener falling back to the source or the worker
// restarting.
func TestRefreshHandsOver(t *testing.T) {
	n := testserver.Start(t, refreshConfig)
	tr := newCounting()
	e := startEngine(t, n, tr, nil)
	sp, sid := speaker(t, n, "pcm16")
	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	send(t, sp, []byte("before"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "before" {
		t.Fatalf("before the refresh: %q", f.Chunk)
	}

	n.Clock.Advance(10 * time.Minute)
	_, i := e.rec.wait(t, 0, "refresh required", func(ev Event) bool { return ev.Kind == EventRefreshRequired && ev.ConnectionID == e.conn })
	att, _ := e.rec.wait(t, i, "new connection", is(EventAttached, "", ""))
	if att.ConnectionID == e.conn {
		t.Fatal("the new connection has the old id")
	}
	e.rec.wait(t, i, "old connection closed", func(ev Event) bool { return ev.Kind == EventDetached && ev.ConnectionID == e.conn })
	e.rec.wait(t, i, "es handed to the new connection", langsAre(att.ConnectionID, sid, "es"))

	send(t, sp, []byte("after"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "after" {
		t.Fatalf("after the refresh: %q", f.Chunk)
	}
	if s, c := tr.counts("es"); s != 1 || c != 0 {
		t.Fatalf("es worker across the refresh: %d starts, %d closes; want 1, 0", s, c)
	}
	if st := e.Stats(); st.Connections != 1 {
		t.Fatalf("stats after the refresh: %+v", st)
	}
}

// A connection the server closes (here its hard maximum, on the fake clock)
// is replaced after a backoff, and the engine serves again.
func TestReconnectAfterDrop(t *testing.T) {
	n := testserver.Start(t, func(c *server.Config) {
		c.ConnectionRefreshAfter = 0
		c.ConnectionWarningAfter = 0
		c.ConnectionMaxDuration = 10 * time.Minute
		c.HeartbeatTimeout = 24 * time.Hour
	})
	e := startEngine(t, n, Passthrough{}, nil)
	_, sid := speaker(t, n, "pcm16")
	listener(t, n, sid, "es")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))

	n.Clock.Advance(10 * time.Minute) // every connection reaches its maximum
	_, i := e.rec.wait(t, 0, "dropped", func(ev Event) bool { return ev.Kind == EventDetached && ev.ConnectionID == e.conn })
	att, _ := e.rec.wait(t, i, "reconnected", is(EventAttached, "", ""))

	// The speaker and the listener come back too; the new connection
	// serves them.
	sp := dial(t, n, "sessionId", sid, "token", n.Token("alice"))
	expect(t, sp, "sessionJoined")
	es, _ := listener(t, n, sid, "es")
	e.rec.wait(t, i, "es on the new connection", langsAre(att.ConnectionID, sid, "es"))
	send(t, sp, []byte("again"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "again" {
		t.Fatalf("after the reconnect: %q", f.Chunk)
	}
}

// A server refusing the token ends Run with the error, without retrying.
func TestRunFailsOnARefusedToken(t *testing.T) {
	n := testserver.Start(t, nil)
	e, err := New(Options{Server: n.URL, Token: StaticToken(n.Token("not-a-processor")), Translator: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(testCtx(t))
	var se *client.ServerError
	if !asServerError(err, &se) || se.Code != "FORBIDDEN" {
		t.Fatalf("Run with a speaker token: %v", err)
	}
}

// TestFailoverTime measures how long a language goes unserved when its
// processor leaves: two processors attach, the first (which the server
// assigned, being the longest attached) closes, and the clock runs until the
// second is told it serves the language. Run with -v to see the figures:
//
//	go test ./processor/ -run TestFailoverTime -v -count=1
func TestFailoverTime(t *testing.T) {
	n := testserver.Start(t, nil)
	a := startEngine(t, n, Passthrough{}, nil)
	b := startEngine(t, n, Passthrough{}, nil)
	sp, sid := speaker(t, n, "pcm16")
	es, _ := listener(t, n, sid, "es")
	a.rec.wait(t, 0, "es on the first processor", langsAre(a.conn, sid, "es"))
	if b.rec.count(langsAre("", sid, "es")) != 0 {
		t.Fatal("the second processor was assigned es while the first serves it")
	}

	// 1. The reference processor stops (a clean WebSocket close).
	t0 := time.Now()
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(t0)
	_, i := b.rec.wait(t, 0, "es on the second processor", langsAre(b.conn, sid, "es"))
	assigned := b.rec.when(i).Sub(t0)
	_, i = b.rec.wait(t, 0, "second processor's worker", is(EventWorkerStarted, sid, "es"))
	working := b.rec.when(i).Sub(t0)
	send(t, sp, []byte("served-by-b"))
	if f := nextTranslated(t, es, nil); string(f.Chunk) != "served-by-b" {
		t.Fatalf("after failover: %q", f.Chunk)
	}
	t.Logf("failover after a clean close: second processor assigned after %v, its worker running after %v (the first's Run returned after %v)",
		assigned, working, stopped)

	// 2. A processor connection dropped without a close frame (the TCP
	// connection closed under it), measured on raw connections.
	tok, err := n.Srv.Auth.Mint("raw", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, n, "action", "attachProcessor", "token", tok, "languages", "es")
	expect(t, c, "processorAttached")
	b.stop() // b served es: c, attached after it, takes over
	if ev := expect(t, c, "languagesChanged"); ev.String("sessionId") != sid {
		t.Fatalf("languagesChanged: %v", ev.JSON)
	}
	d := dial(t, n, "action", "attachProcessor", "token", tok, "languages", "es")
	expect(t, d, "processorAttached")
	t1 := time.Now()
	c.CloseNow()
	ev := expect(t, d, "languagesChanged")
	dropped := time.Since(t1)
	if ev.String("sessionId") != sid {
		t.Fatalf("languagesChanged: %v", ev.JSON)
	}
	t.Logf("failover after a dropped TCP connection: second processor assigned after %v", dropped)
}

func asServerError(err error, target **client.ServerError) bool {
	for err != nil {
		if se, ok := err.(*client.ServerError); ok {
			*target = se
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestQueueDropsOldest(t *testing.T) {
	q := newQueue(3)
	dropped := 0
	for i := range 5 {
		if q.push(Chunk{Sequence: uint32(i)}) {
			dropped++
		}
	}
	if dropped != 2 || q.droppedCount() != 2 {
		t.Fatalf("dropped %d (counted %d), want 2", dropped, q.droppedCount())
	}
	var seqs []int
	for {
		c, ok := q.pop()
		if !ok {
			break
		}
		seqs = append(seqs, int(c.Sequence))
	}
	if !sort.IntsAreSorted(seqs) || !slices.Equal(seqs, []int{2, 3, 4}) {
		t.Fatalf("kept %v, want the newest [2 3 4]", seqs)
	}
	q.push(Chunk{})
	if n := q.clear(); n != 1 || q.droppedCount() != 3 {
		t.Fatalf("clear: %d, dropped %d", n, q.droppedCount())
	}
}

// A worker that blocks makes its own queue drop the oldest chunks; the
// engine keeps reading, and the worker resumes with the newest.
func TestSlowWorkerDropsOldest(t *testing.T) {
	n := testserver.Start(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	processed := make(chan uint32, 100)
	tr := TranslatorFunc(func(ctx context.Context, s Stream, out Output) (Worker, error) {
		first := true
		return WorkerFunc(func(c Chunk) error {
			if first {
				first = false
				close(entered)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			processed <- c.Sequence
			return nil
		}), nil
	})
	e := startEngine(t, n, tr, func(o *Options) { o.QueueChunks = 2 })
	sp, sid := speaker(t, n, "pcm16")
	listener(t, n, sid, "es")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	const total = 10
	send(t, sp, []byte{0, 1})
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("the worker never got the first chunk")
	}
	for i := 1; i < total; i++ {
		send(t, sp, []byte{byte(i), 1})
	}
	// Chunks 1 and 2 fill the queue; 3 to 9 each push out the oldest.
	from := 0
	for d := range total - 3 {
		_, from = e.rec.wait(t, from, fmt.Sprintf("drop %d", d+1), is(EventDropped, sid, "es"))
	}
	close(release)
	var got []uint32
	for len(got) < 3 {
		select {
		case s := <-processed:
			got = append(got, s)
		case <-time.After(wait):
			t.Fatalf("processed %v", got)
		}
	}
	if !slices.Equal(got, []uint32{0, total - 2, total - 1}) {
		t.Fatalf("processed %v, want the first chunk and the newest two", got)
	}
	if st := e.Stats(); st.Dropped != total-3 || st.SourceChunks != total {
		t.Fatalf("stats %+v, want %d dropped of %d", st, total-3, total)
	}
}

// Every worker of a session may transcribe; source-language listeners get
// the transcript once.
func TestTranscriptPublishedOnce(t *testing.T) {
	n := testserver.Start(t, nil)
	tr := TranslatorFunc(func(_ context.Context, s Stream, out Output) (Worker, error) {
		return WorkerFunc(func(c Chunk) error {
			out.Transcript("said: "+string(c.Data), true)
			out.Audio(c.Data)
			return nil
		}), nil
	})
	e := startEngine(t, n, tr, nil)
	sp, sid := speaker(t, n, "pcm16")
	en, _ := listener(t, n, sid, "en")
	es, _ := listener(t, n, sid, "es")
	fr, _ := listener(t, n, sid, "fr")
	e.rec.wait(t, 0, "es worker", is(EventWorkerStarted, sid, "es"))
	e.rec.wait(t, 0, "fr worker", is(EventWorkerStarted, sid, "fr"))
	send(t, sp, []byte("amen"))
	// Each worker transcribed before publishing its audio.
	nextTranslated(t, es, nil)
	nextTranslated(t, fr, nil)
	if st := e.Stats(); st.Captions != 1 {
		t.Fatalf("%d transcripts published, want 1", st.Captions)
	}
	if c := expect(t, en, "caption"); c.String("text") != "said: amen" || c.String("targetLanguage") != "en" || !c.Bool("final") {
		t.Fatalf("transcript: %v", c.JSON)
	}
}

// blackHole is a TCP proxy whose existing connections can be frozen: from
// then on it forwards nothing either way and closes nothing, as a network
// path that silently died.
type blackHole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*atomic.Bool
}

func newBlackHole(t *testing.T, target string) *blackHole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, target: target}
	var open []net.Conn
	var openMu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
	})
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			openMu.Lock()
			open = append(open, down, up)
			openMu.Unlock()
			frozen := &atomic.Bool{}
			b.mu.Lock()
			b.conns = append(b.conns, frozen)
			b.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32*1024)
				for {
					n, err := src.Read(buf)
					if n > 0 && !frozen.Load() {
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						if !frozen.Load() {
							dst.Close()
						}
						return
					}
				}
			}
			go pipe(up, down)
			go pipe(down, up)
		}
	}()
	return b
}

func (b *blackHole) freezeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.conns {
		f.Store(true)
	}
}

// A connection that goes silent (no close, no reset: the path died) is
// noticed by the heartbeat check, dropped and replaced.
func TestSilentConnectionIsReplaced(t *testing.T) {
	n := testserver.Start(t, func(c *server.Config) {
		c.RateHeartbeatsPerMinute = 60000
		c.RateHeartbeatBurst = 10000
	})
	proxy := newBlackHole(t, strings.TrimPrefix(n.URL, "http://"))
	e := startEngine(t, n, Passthrough{}, func(o *Options) {
		o.Server = "http://" + proxy.ln.Addr().String()
		o.HeartbeatInterval = 20 * time.Millisecond
		o.DeadAfter = 200 * time.Millisecond
	})
	proxy.freezeAll()
	ev, i := e.rec.wait(t, 0, "the silent connection dropped", func(ev Event) bool { return ev.Kind == EventDetached && ev.ConnectionID == e.conn })
	if !errors.Is(ev.Err, errSilent) {
		t.Fatalf("detached with %v, want the silence error", ev.Err)
	}
	if att, _ := e.rec.wait(t, i, "a new connection", is(EventAttached, "", "")); att.ConnectionID == e.conn {
		t.Fatal("same connection id")
	}
}
