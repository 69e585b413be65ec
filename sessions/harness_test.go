package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/internal/inmem"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
	"github.com/pentecost/pentecost/sessions"
)

// The tests of this package drive the rules through their API with the
// in-memory bus, presence and store, fake connections and a fake clock.
// Several nodes in one test share the bus, the presence and the store, as
// the nodes of a cluster share Redis.

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// wait bounds how long a test waits for what timers and the bus do on
// goroutines of their own.
const wait = 3 * time.Second

// world is what the nodes of a test share.
type world struct {
	t        *testing.T
	clock    *clockwork.FakeClock
	store    *flakyStore
	bus      *inmem.Bus
	presence *inmem.Presence // the first node's; the others are its peers
	cfg      sessions.Config
	// busOverride, if set, is the bus the nodes started from now on use
	// (a faulty one wrapping bus).
	busOverride sessions.Bus
}

func newWorld(t *testing.T, mutate func(*sessions.Config)) *world {
	t.Helper()
	cfg := sessions.DefaultConfig()
	cfg.SweepInterval = 0
	cfg.ReassertInterval = 0
	cfg.StatusInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	return &world{
		t:     t,
		clock: clockwork.NewFakeClockAt(t0),
		store: &flakyStore{Store: inmem.NewStore()},
		bus:   inmem.NewBus(),
		cfg:   cfg,
	}
}

// node is one Service of the world.
type node struct {
	*sessions.Service
	w        *world
	presence *inmem.Presence
	obs      *recorder
	limiter  *fakeLimiter
}

// settle waits until the node has sent everything it handed to the bus, so
// that another node's none() check is not passed by a message still on its
// way.
func (n *node) settle() {
	n.w.t.Helper()
	eventually(n.w.t, "the node's bus messages sent", n.BusIdle)
}

// node starts one more node.
func (w *world) node() *node {
	w.t.Helper()
	var p *inmem.Presence
	if w.presence == nil {
		w.presence = inmem.NewPresence(sessions.NewNodeID())
		p = w.presence
	} else {
		p = w.presence.Peer()
	}
	n := &node{w: w, presence: p, obs: &recorder{counts: map[string]int{}}, limiter: &fakeLimiter{}}
	var bus sessions.Bus = w.bus
	if w.busOverride != nil {
		bus = w.busOverride
	}
	n.Service = sessions.New(w.cfg, sessions.Options{
		Store:    w.store,
		Clock:    w.clock,
		IDs:      sessionid.Generator{},
		Limiter:  n.limiter,
		Observer: n.obs,
		Bus:      bus,
		Presence: p,
	})
	if err := n.Start(context.Background()); err != nil {
		w.t.Fatalf("start: %v", err)
	}
	w.t.Cleanup(n.Close)
	return n
}

// fakeConn is a connection as the rules see it; the test reads what was
// queued to it.
type fakeConn struct {
	t  *testing.T
	id string
	q  *hub.Queue

	mu      sync.Mutex
	pending []*hub.Message
	closed  bool
	code    int
	reason  string
}

var connSeq atomic.Int64

func newConn(t *testing.T) *fakeConn {
	return &fakeConn{t: t, id: fmt.Sprintf("conn-%d", connSeq.Add(1)), q: hub.NewQueue(hub.QueueOptions{})}
}

func (c *fakeConn) ID() string        { return c.id }
func (c *fakeConn) Queue() *hub.Queue { return c.q }
func (c *fakeConn) Close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed, c.code, c.reason = true, code, reason
	}
}

// closedWith reports the close code, 0 while open.
func (c *fakeConn) closedWith() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// msg is one message a connection received.
type msg struct {
	typ   string
	json  map[string]any
	audio protocol.AudioHeader
	chunk []byte
}

func (m msg) str(k string) string { s, _ := m.json[k].(string); return s }
func (m msg) num(k string) float64 {
	f, _ := m.json[k].(float64)
	return f
}
func (m msg) flag(k string) bool { b, _ := m.json[k].(bool); return b }
func (m msg) obj(k string) map[string]any {
	o, _ := m.json[k].(map[string]any)
	return o
}

func decode(t *testing.T, hm *hub.Message) msg {
	t.Helper()
	if hm.Binary {
		h, chunk, err := protocol.ParseAudioFrame(hm.Payload)
		if err != nil {
			t.Fatalf("binary message: %v", err)
		}
		return msg{typ: "audio", audio: h, chunk: append([]byte(nil), chunk...)}
	}
	var m map[string]any
	if err := json.Unmarshal(hm.Payload, &m); err != nil {
		t.Fatalf("text message %q: %v", hm.Payload, err)
	}
	typ, _ := m["type"].(string)
	return msg{typ: typ, json: m}
}

// take moves what is queued into pending.
func (c *fakeConn) take() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, c.q.Take(nil)...)
}

// drain returns every message received and not yet read.
func (c *fakeConn) drain() []msg {
	c.t.Helper()
	c.take()
	c.mu.Lock()
	p := c.pending
	c.pending = nil
	c.mu.Unlock()
	out := make([]msg, len(p))
	for i, hm := range p {
		out[i] = decode(c.t, hm)
	}
	return out
}

// expect waits for a message of type typ, dropping the messages before
// it.
func (c *fakeConn) expect(typ string) msg {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	var seen []string
	for {
		c.take()
		c.mu.Lock()
		for i, hm := range c.pending {
			m := decode(c.t, hm)
			if m.typ == typ {
				c.pending = c.pending[i+1:]
				c.mu.Unlock()
				return m
			}
			seen = append(seen, m.typ)
		}
		c.pending = nil
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no %s within %v; got %v", c.id, typ, wait, seen)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// none checks that no message of type typ is waiting.
func (c *fakeConn) none(typ string) {
	c.t.Helper()
	for _, m := range c.drain() {
		if m.typ == typ {
			c.t.Fatalf("%s: unexpected %s: %v", c.id, typ, m.json)
		}
	}
}

// audio waits for the next audio chunk, binary or base64.
func (c *fakeConn) audio() msg {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c.take()
		c.mu.Lock()
		for i, hm := range c.pending {
			m := decode(c.t, hm)
			if m.typ == "audio" || m.typ == protocol.TypeAudioData {
				c.pending = c.pending[i+1:]
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no audio within %v", c.id, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// awaitClose waits for the connection to be closed and returns the code.
func (c *fakeConn) awaitClose() (int, string) {
	c.t.Helper()
	eventually(c.t, c.id+" closed", func() bool { code, _ := c.closedWith(); return code != 0 })
	return c.closedWith()
}

// eventually polls cond until it holds, or fails the test after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	lags   []time.Duration
	pairs  map[string][2]int
}

func (r *recorder) add(k string, n int) {
	r.mu.Lock()
	r.counts[k] += n
	r.mu.Unlock()
}

func (r *recorder) count(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[k]
}

func (r *recorder) SessionCreated(time.Duration) { r.add("created", 1) }
func (r *recorder) ListenerJoined(time.Duration) { r.add("joined", 1) }
func (r *recorder) SessionEnded(reason string)   { r.add("ended:"+reason, 1) }
func (r *recorder) GraceOutcome(outcome string)  { r.add("grace:"+outcome, 1) }
func (r *recorder) AudioIn(n int)                { r.add("audioIn", n) }
func (r *recorder) AudioDropped(n int)           { r.add("audioDropped", n) }
func (r *recorder) Refreshed(role string)        { r.add("refreshed:"+role, 1) }
func (r *recorder) RateLimited(kind string)      { r.add("limited:"+kind, 1) }
func (r *recorder) Processors(n int)             { r.mu.Lock(); r.counts["processors"] = n; r.mu.Unlock() }
func (r *recorder) Transcoded(op string, n int)  { r.add("transcoded:"+op, n) }
func (r *recorder) ProcessingLag(_ string, d time.Duration) {
	r.mu.Lock()
	r.lags = append(r.lags, d)
	r.mu.Unlock()
}
func (r *recorder) BusDropped(kind string, n int) { r.add("busDropped:"+kind, n) }
func (r *recorder) BusAudioMissing(n int)         { r.add("busMissing", n) }
func (r *recorder) RecordReasserted(what string)  { r.add("reasserted:"+what, 1) }
func (r *recorder) BusUp(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up {
		r.counts["busUp"] = 1
	} else {
		r.counts["busUp"] = -1
	}
}
func (r *recorder) LanguagePairs(sid string, served, unserved int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pairs == nil {
		r.pairs = map[string][2]int{}
	}
	r.pairs[sid] = [2]int{served, unserved}
}

// fakeLimiter allows until told otherwise.
type fakeLimiter struct {
	mu    sync.Mutex
	deny  bool
	err   error
	calls int
}

func (f *fakeLimiter) Allow(context.Context, string, int) (bool, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return !f.deny, 90 * time.Second, f.err
}

func (f *fakeLimiter) set(deny bool, err error) {
	f.mu.Lock()
	f.deny, f.err = deny, err
	f.mu.Unlock()
}

// flakyStore is the in-memory store with an outage switch.
type flakyStore struct {
	*inmem.Store
	down atomic.Bool
}

var errStoreDown = errors.New("store is down")

func (s *flakyStore) Create(ctx context.Context, r *pentecost.Session) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Create(ctx, r)
}

func (s *flakyStore) Get(ctx context.Context, id string) (*pentecost.Session, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.Get(ctx, id)
}

func (s *flakyStore) Update(ctx context.Context, id string, fn func(*pentecost.Session) error) (*pentecost.Session, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.Update(ctx, id, fn)
}

func (s *flakyStore) List(ctx context.Context) ([]*pentecost.Session, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.List(ctx)
}

func (s *flakyStore) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	if s.down.Load() {
		return 0, errStoreDown
	}
	return s.Store.Sweep(ctx, cutoff)
}

func (s *flakyStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Ping(ctx)
}

// record reads a session's record straight from the store.
func (w *world) record(id string) *pentecost.Session {
	w.t.Helper()
	r, err := w.store.Store.Get(context.Background(), id)
	if err != nil {
		w.t.Fatalf("record %s: %v", id, err)
	}
	return r
}

// code is the protocol error code of err ("" for nil).
func code(err error) string {
	if err == nil {
		return ""
	}
	return pentecost.ErrorCode(err)
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: error %v (code %q), want %q", what, err, got, want)
	}
}

var ctx = context.Background()

// create makes a session owned by owner on n.
func (n *node) create(owner string) *pentecost.Session {
	n.w.t.Helper()
	rec, err := n.Create(ctx, owner, sessions.CreateParams{SourceLanguage: "en"})
	if err != nil {
		n.w.t.Fatalf("create: %v", err)
	}
	return rec
}

// speak attaches a new speaker connection of owner to session id.
func (n *node) speak(id, owner string, refresh bool) (*sessions.Speaker, *fakeConn) {
	n.w.t.Helper()
	c := newConn(n.w.t)
	sp, _, err := n.AttachSpeaker(ctx, c, id, owner, refresh)
	if err != nil {
		n.w.t.Fatalf("attach speaker: %v", err)
	}
	return sp, c
}

// listen joins a new listener connection to session id in lang.
func (n *node) listen(id, lang string) (*sessions.Listener, *fakeConn, sessions.JoinInfo) {
	n.w.t.Helper()
	c := newConn(n.w.t)
	h, info, err := n.JoinListener(ctx, c, sessions.JoinParams{SessionID: id, TargetLanguage: lang})
	if err != nil {
		n.w.t.Fatalf("join %s: %v", lang, err)
	}
	return h, c, info
}
