package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/server"
)

// A Redis that stops answering (SIGSTOP for 10 s) costs the listeners on
// other nodes their audio for that long, and nobody else anything: the
// speaker's own node fans out without waiting on Redis, the speaker's
// heartbeats are answered at once, and when Redis comes back cross-node
// audio resumes by itself, without a burst of stale chunks, and what was
// dropped is counted and logged.
func TestRedisStallKeepsLocalAudio(t *testing.T) {
	const stall = 10 * time.Second
	r := startRedis(t)
	c := privateCluster(t, r, func(cfg *server.Config) {
		// The real audio limit: a backlog read in one burst would trip it.
		cfg.AudioMaxChunksPerSec = server.Defaults().AudioMaxChunksPerSec
		cfg.RateHeartbeatsPerMinute, cfg.RateHeartbeatBurst = 6000, 100
		// The stall stays shorter than a node's heartbeat: no node
		// takes another for dead.
		cfg.NodeTTL = 30 * time.Second
	})
	a, b := c.realNode(), c.realNode()
	sp, id := speaker(t, a, "alice")
	local, _ := listener(t, a, id, "es")
	remote, _ := listener(t, b, id, "fr")

	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	onLocal, onRemote, onSpeaker := record(bg, local), record(bg, remote), record(bg, sp)
	chunks := stream(bg, sp)
	time.Sleep(2 * time.Second)
	if n, _ := between(onRemote.arrivals(), time.Now().Add(-time.Second), time.Now()); n < 40 {
		t.Fatalf("before the stall the remote listener got %d chunks in a second", n)
	}

	stallAt := time.Now()
	r.stall()
	// The speaker's heartbeats during the stall.
	var beats []time.Time
	for i := 0; i < int(stall/(500*time.Millisecond)); i++ {
		beats = append(beats, time.Now())
		if err := sp.Send(bg, map[string]any{"action": "heartbeat"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	resumeAt := time.Now()
	r.resume()
	time.Sleep(5 * time.Second)
	endAt := time.Now()
	cancel()

	// Same-node listener during the stall.
	sent := chunks.sentBetween(stallAt, resumeAt)
	got, silence := between(onLocal.arrivals(), stallAt, resumeAt)
	t.Logf("during the %v stall: the speaker sent %d chunks; the same-node listener got %d (%.1f %%), longest silence %v",
		stall, sent, got, 100*float64(got)/float64(sent), silence.Round(time.Millisecond))
	if float64(got) < 0.99*float64(sent) {
		t.Errorf("the same-node listener got %d of %d chunks during the stall, want >= 99 %%", got, sent)
	}
	if silence > 100*time.Millisecond {
		t.Errorf("the same-node listener heard nothing for %v during the stall, want <= 100 ms", silence)
	}

	// The speaker's heartbeats were answered at once.
	_, acks := onSpeaker.eventsOf("heartbeatAck")
	if len(acks) < len(beats) {
		t.Fatalf("%d heartbeatAcks for %d heartbeats", len(acks), len(beats))
	}
	var slowest time.Duration
	for i, at := range beats {
		slowest = max(slowest, acks[len(acks)-len(beats)+i].Sub(at))
	}
	t.Logf("slowest heartbeatAck during the stall: %v", slowest.Round(time.Millisecond))
	if slowest > 250*time.Millisecond {
		t.Errorf("a heartbeatAck took %v during the stall", slowest)
	}
	if errs, _ := onSpeaker.eventsOf("error"); len(errs) > 0 {
		t.Errorf("the speaker got errors: %v", errs[0].JSON)
	}

	// Cross-node audio resumed by itself, without a burst of stale chunks.
	localSeqs := map[uint32]time.Time{}
	for _, a := range onLocal.arrivals() {
		localSeqs[a.seq] = a.at
	}
	var resumed time.Time
	stale := 0
	for _, a := range onRemote.arrivals() {
		numbered, ok := localSeqs[a.seq]
		if !ok || a.at.Before(resumeAt) {
			continue
		}
		if numbered.Before(resumeAt) && numbered.After(stallAt.Add(time.Second)) {
			stale++ // numbered during the stall, delivered after it
		}
		if !numbered.Before(resumeAt) && resumed.IsZero() {
			resumed = a.at
		}
	}
	after, _ := between(onRemote.arrivals(), resumeAt.Add(3*time.Second), endAt)
	t.Logf("after the stall: cross-node audio back %v after SIGCONT; %d stale chunks delivered; %d chunks in the last %v",
		resumed.Sub(resumeAt).Round(time.Millisecond), stale, after, endAt.Sub(resumeAt.Add(3*time.Second)).Round(time.Millisecond))
	if resumed.IsZero() || resumed.Sub(resumeAt) > 3*time.Second {
		t.Errorf("cross-node audio did not resume within 3 s of SIGCONT")
	}
	if stale > 25 {
		t.Errorf("%d chunks numbered during the stall reached the other node after it (a backlog burst)", stale)
	}
	if expect := chunks.sentBetween(resumeAt.Add(3*time.Second), endAt); float64(after) < 0.95*float64(expect) {
		t.Errorf("after the recovery the remote listener got %d of %d chunks", after, expect)
	}

	// Nothing is lost silently: the speaker's node counted and logged what
	// it dropped, and the other node counted what never arrived.
	dropped := metric(t, a, `pentecost_bus_dropped_total{kind="audio"}`)
	missing := metric(t, b, `pentecost_bus_audio_missing_total`)
	t.Logf("node A dropped %v chunks for the other nodes; node B counted %v missing", dropped, missing)
	if dropped < 0.9*float64(sent) || missing < 0.9*float64(sent) {
		t.Errorf("dropped %v, missing %v, for %d chunks sent during the stall", dropped, missing, sent)
	}
	if metric(t, a, "pentecost_bus_up") != 1 {
		t.Error("pentecost_bus_up is not 1 again")
	}
	logs := a.Logs.String()
	for _, want := range []string{"cross-node bus unavailable", "cross-node bus is back"} {
		if !strings.Contains(logs, want) {
			t.Errorf("node A did not log %q", want)
		}
	}
}
