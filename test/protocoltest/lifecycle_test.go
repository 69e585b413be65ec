package protocoltest

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/server"
)

// seqLog records the audio sequence numbers a listener (across all its
// connections) received, and checks each connection's order.
type seqLog struct {
	t      *testing.T
	got    map[uint32]int
	chunks map[uint32]bool
	last   map[*client.Conn]int64
}

func newSeqLog(t *testing.T) *seqLog {
	return &seqLog{t: t, got: map[uint32]int{}, chunks: map[uint32]bool{}, last: map[*client.Conn]int64{}}
}

func (s *seqLog) record(c *client.Conn, f *client.AudioFrame) {
	s.t.Helper()
	seq := int64(f.Header.Sequence)
	if last, ok := s.last[c]; ok && seq <= last {
		s.t.Fatalf("sequence went from %d to %d on one connection", last, seq)
	}
	s.last[c] = seq
	s.got[f.Header.Sequence]++
	// Chunks sent on two connections during a refresh overlap may be
	// numbered in the order they reached the server, so the chunk's own
	// number is tracked apart from its sequence number.
	s.chunks[binary.BigEndian.Uint32(f.Chunk)] = true
}

// until reads c, recording audio, until a JSON message of type typ.
func (s *seqLog) until(c *client.Conn, typ string) client.Event {
	s.t.Helper()
	for {
		ev, err := c.Next(ctx(s.t))
		if err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if ev.Audio != nil {
			s.record(c, ev.Audio)
			continue
		}
		if ev.Type == typ {
			return ev
		}
	}
}

// drain reads c to its close, recording audio, and returns the close code.
func (s *seqLog) drain(c *client.Conn) int {
	s.t.Helper()
	for {
		ev, err := c.Next(ctx(s.t))
		if err != nil {
			var ce *client.CloseError
			if !errors.As(err, &ce) {
				s.t.Fatalf("drain: %v", err)
			}
			return ce.Code
		}
		if ev.Audio != nil {
			s.record(c, ev.Audio)
		}
	}
}

// waitAll reads c until every chunk below n has arrived somewhere.
func (s *seqLog) waitAll(c *client.Conn, n uint32) {
	s.t.Helper()
	for {
		missing := false
		for i := uint32(0); i < n; i++ {
			if !s.chunks[i] {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		ev, err := c.Next(ctx(s.t))
		if err != nil {
			s.t.Fatalf("waiting for chunks below %d: %v", n, err)
		}
		if ev.Audio != nil {
			s.record(c, ev.Audio)
		}
	}
}

// gapFree checks every sequence 0..n-1 arrived (duplicates from a refresh
// overlap are fine: clients dedupe by sequence number).
func (s *seqLog) gapFree(n int) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		if s.got[uint32(i)] == 0 {
			s.t.Fatalf("sequence %d never arrived (got %d distinct of %d)", i, len(s.got), n)
		}
	}
	if len(s.got) != n {
		s.t.Fatalf("got %d distinct sequences, want %d", len(s.got), n)
	}
	for i := 0; i < n; i++ {
		if !s.chunks[uint32(i)] {
			s.t.Fatalf("chunk %d was lost", i)
		}
	}
}

// chunks sends k chunks on c, each carrying its expected sequence number.
type chunker struct {
	t    *testing.T
	next uint32
}

func (ch *chunker) send(c *client.Conn, k int) {
	ch.t.Helper()
	for i := 0; i < k; i++ {
		b := make([]byte, 320)
		binary.BigEndian.PutUint32(b, ch.next)
		if err := c.SendBinary(ctx(ch.t), b); err != nil {
			ch.t.Fatalf("send chunk %d: %v", ch.next, err)
		}
		ch.next++
	}
}

func lifecycleConfig(c *server.Config) {
	c.ConnectionRefreshAfter = 100 * time.Millisecond
	c.ConnectionWarningAfter = 150 * time.Millisecond
	c.ConnectionMaxDuration = 200 * time.Millisecond
	c.RefreshOverlap = 20 * time.Millisecond
	c.AudioMaxChunksPerSec = 0
	c.HeartbeatTimeout = 0
	c.PingInterval = 0
	c.StatusInterval = 0
}

// A session runs for many connection lifetimes through repeated refreshes of
// both the speaker and a listener, and the listener hears every chunk.
func TestLifecycleRefreshCyclesGapFree(t *testing.T) {
	n := start(t, lifecycleConfig)
	token := n.Token("alice")
	sp, id := speaker(t, n, "alice")
	li, joined := listener(t, n, id, "es")
	liID := joined.String("connectionId")
	log := newSeqLog(t)
	ch := &chunker{t: t}

	const cycles = 25
	for cycle := 0; cycle < cycles; cycle++ {
		ch.send(sp, 5)
		n.Clock.Advance(100 * time.Millisecond)
		req := expect(t, sp, "connectionRefreshRequired")
		if req.String("reason") != "maxDuration" || req.String("role") != "speaker" || req.String("sessionId") != id {
			t.Fatalf("speaker refresh request: %v", req.JSON)
		}
		lreq := log.until(li, "connectionRefreshRequired")
		if lreq.String("targetLanguage") != "es" || lreq.String("role") != "listener" {
			t.Fatalf("listener refresh request: %v", lreq.JSON)
		}
		// refreshBy is the hard maximum: 200 ms after the connection was
		// made, which is at most 100 ms from the refresh request.
		if left := lreq.Int("refreshBy") - lreq.Int("timestamp"); left <= 0 || left > 100 {
			t.Fatalf("refreshBy is %d ms after the request, want within the 100 ms to the maximum", left)
		}

		newSp := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "speaker", "token", token))
		done := expect(t, newSp, "connectionRefreshComplete")
		if done.String("role") != "speaker" || done.String("sourceLanguage") != "en" {
			t.Fatalf("speaker refresh complete: %v", done.JSON)
		}
		ch.send(sp, 2) // the old connection is still accepted in the overlap
		ch.send(newSp, 3)

		newLi := dial(t, n, q("action", "refreshConnection", "sessionId", id, "role", "listener",
			"targetLanguage", "es", "previousConnectionId", liID))
		ldone := log.until(newLi, "connectionRefreshComplete")
		if ldone.String("targetLanguage") != "es" {
			t.Fatalf("listener refresh complete: %v", ldone.JSON)
		}
		ch.send(newSp, 2)
		// Everything sent so far reaches the old listener before the overlap
		// ends; only then is it a fair test of the hand-over.
		log.waitAll(li, ch.next)

		n.Clock.Advance(20 * time.Millisecond) // the overlap ends: both old connections are closed
		if code := log.drain(li); code != 1000 {
			t.Fatalf("old listener closed with %d, want 1000", code)
		}
		if _, err := sp.Expect(ctx(t), "never"); !isClose(err, 1000) {
			t.Fatalf("old speaker: %v, want close 1000", err)
		}
		sp, li, liID = newSp, newLi, ldone.String("connectionId")
	}
	ch.send(sp, 1)
	for len(log.got) < int(ch.next) {
		ev, err := li.Next(ctx(t))
		if err != nil {
			t.Fatalf("final read: %v", err)
		}
		if ev.Audio != nil {
			log.record(li, ev.Audio)
		}
	}
	log.gapFree(int(ch.next))
	// The refreshes were not speaker drops: nobody heard of one. The server
	// lets the last old connections go after their close handshake, which
	// the clients may see first: poll.
	waitUntil(t, "one listener and one speaker connection after the cycles", func() bool {
		got := n.Srv.Sessions.Stats()
		return got.Listeners == 1 && got.SpeakerConnections == 1
	})
}

func isClose(err error, code int) bool {
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return ce.Code == code
	}
	var se *client.ServerError
	return errors.As(err, &se) && se.Close != nil && se.Close.Code == code
}

// Without a refresh, the warning comes, then the hard maximum closes with
// 4410; a same-socket refreshConnection restarts the connection's age.
func TestLifecycleWarningMaxInPlaceRefresh(t *testing.T) {
	n := start(t, lifecycleConfig)
	_, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "fr")

	n.Clock.Advance(90 * time.Millisecond)
	if err := li.Send(ctx(t), map[string]any{"action": "refreshConnection"}); err != nil {
		t.Fatal(err)
	}
	done := expect(t, li, "connectionRefreshComplete")
	if done.String("targetLanguage") != "fr" || done.String("sessionId") != id {
		t.Fatalf("in-place refresh: %v", done.JSON)
	}
	// 150 ms after the in-place refresh (240 ms after connecting) the
	// connection is still open: its age restarted.
	n.Clock.Advance(60 * time.Millisecond)
	n.Clock.Advance(90 * time.Millisecond)
	w := expect(t, li, "connectionWarning")
	if rm := w.Float("remainingMinutes"); rm <= 0 || rm > 0.001 {
		t.Fatalf("remainingMinutes = %v, want the 50 ms left in minutes", rm)
	}
	n.Clock.Advance(50 * time.Millisecond)
	ce := expectClose(t, li, 4410)
	if ce.Reason != "maxDuration" {
		t.Fatalf("close reason %q", ce.Reason)
	}
}

func graceConfig(c *server.Config) {
	c.SpeakerGrace = 60 * time.Second
	c.HeartbeatTimeout = 0
	c.PingInterval = 0
	c.AudioMaxChunksPerSec = 0
	c.StatusInterval = 0
}

func TestLifecycleSpeakerDropGrace(t *testing.T) {
	drops := map[string]func(c *client.Conn){
		"network loss": func(c *client.Conn) { c.CloseNow() },
		"clean close":  func(c *client.Conn) { _ = c.Close() },
	}
	for name, drop := range drops {
		t.Run(name, func(t *testing.T) {
			n := start(t, graceConfig)
			sp, id := speaker(t, n, "alice")
			li, _ := listener(t, n, id, "es")
			log := newSeqLog(t)
			ch := &chunker{t: t}
			ch.send(sp, 3)

			drop(sp)
			ev := log.until(li, "speakerDisconnected")
			if ev.Int("graceSeconds") != 60 || ev.String("sessionId") != id {
				t.Fatalf("speakerDisconnected: %v", ev.JSON)
			}
			n.Clock.Advance(59 * time.Second)

			back := dial(t, n, q("sessionId", id, "token", n.Token("alice")))
			joined := expect(t, back, "sessionJoined")
			if joined.String("role") != "speaker" || joined.Int("listenerCount") != 1 {
				t.Fatalf("re-attach: %v", joined.JSON)
			}
			log.until(li, "speakerReconnected")
			ch.send(back, 3)
			for len(log.got) < 6 {
				log.record(li, nextAudio(t, li))
			}
			log.gapFree(6)
			// The grace timer is gone: much later the session still runs.
			n.Clock.Advance(10 * time.Minute)
			if err := back.Send(ctx(t), map[string]any{"action": "getSessionStatus"}); err != nil {
				t.Fatal(err)
			}
			if st := expect(t, back, "sessionStatus"); st.Int("listenerCount") != 1 {
				t.Fatalf("status: %v", st.JSON)
			}
		})
	}
}

func TestLifecycleGraceTimeout(t *testing.T) {
	n := start(t, graceConfig)
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	sp.CloseNow()
	expect(t, li, "speakerDisconnected")
	n.Clock.Advance(60 * time.Second)
	ev := expect(t, li, "sessionEnded")
	if ev.String("reason") != "speakerTimeout" {
		t.Fatalf("sessionEnded: %v", ev.JSON)
	}
	expectClose(t, li, 1000)
	refusedWith(t, n, q("sessionId", id, "targetLanguage", "es"), "SESSION_NOT_FOUND", 4404)
}

// A speaker that stops sending anything (no close, no heartbeats) is closed
// by the idle timeout, and that too is a drop with a grace.
func TestLifecycleSpeakerIdleTimeoutGrace(t *testing.T) {
	n := start(t, func(c *server.Config) {
		graceConfig(c)
		c.HeartbeatTimeout = 90 * time.Second
		c.PingInterval = 0
	})
	sp, id := speaker(t, n, "alice")
	li, _ := listener(t, n, id, "es")
	// The listener keeps itself alive; the speaker says nothing.
	n.Clock.Advance(60 * time.Second)
	if err := li.Send(ctx(t), map[string]any{"action": "heartbeat"}); err != nil {
		t.Fatal(err)
	}
	expect(t, li, "heartbeatAck")
	n.Clock.Advance(31 * time.Second)
	to := expect(t, sp, "connectionTimeout")
	if to.Int("idleSeconds") < 90 {
		t.Fatalf("connectionTimeout: %v", to.JSON)
	}
	expectClose(t, sp, 4408)
	ev := expect(t, li, "speakerDisconnected")
	if ev.Int("graceSeconds") != 60 {
		t.Fatalf("speakerDisconnected: %v", ev.JSON)
	}
}

func TestLifecycleStartTimeoutMaxDuration(t *testing.T) {
	t.Run("never attached", func(t *testing.T) {
		n := start(t, func(c *server.Config) { c.SessionStartTimeout = time.Hour; c.HeartbeatTimeout = 0; c.PingInterval = 0 })
		id := createHTTP(t, n, "alice", nil)
		li, joined := listener(t, n, id, "de")
		if joined.Bool("speakerConnected") {
			t.Fatal("no speaker has attached")
		}
		n.Clock.Advance(time.Hour)
		ev := expect(t, li, "sessionEnded")
		if ev.String("reason") != "expired" {
			t.Fatalf("sessionEnded: %v", ev.JSON)
		}
		expectClose(t, li, 1000)
		r := getSession(t, n, id)
		if r.Status != 200 || r.Body["status"] != "ended" || r.Body["endReason"] != "expired" {
			t.Fatalf("GET after expiry: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("maximum duration", func(t *testing.T) {
		n := start(t, func(c *server.Config) {
			c.SessionMaxDuration = 3 * time.Hour
			c.HeartbeatTimeout = 0
			c.PingInterval = 0
			c.ConnectionMaxDuration = 0
			c.ConnectionRefreshAfter = 0
			c.ConnectionWarningAfter = 0
		})
		sp, id := speaker(t, n, "alice")
		li, _ := listener(t, n, id, "de")
		n.Clock.Advance(3 * time.Hour)
		for _, c := range []*client.Conn{sp, li} {
			if ev := expect(t, c, "sessionEnded"); ev.String("reason") != "expired" {
				t.Fatalf("sessionEnded: %v", ev.JSON)
			}
			expectClose(t, c, 1000)
		}
	})
}
