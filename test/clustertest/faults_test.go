package clustertest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// arrival is one audio chunk a listener received, and when.
type arrival struct {
	seq uint32
	at  time.Time
}

// recorder collects what one connection receives, on a goroutine of its own.
type recorder struct {
	mu     sync.Mutex
	audio  []arrival
	events []client.Event
	at     []time.Time
}

func record(ctx context.Context, c *client.Conn) *recorder {
	r := &recorder{}
	go func() {
		for {
			ev, err := c.Next(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			r.mu.Lock()
			if ev.Audio != nil {
				r.audio = append(r.audio, arrival{ev.Audio.Header.Sequence, now})
			} else {
				r.events = append(r.events, ev)
				r.at = append(r.at, now)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.audio...)
}

// eventsOf returns the received events of type typ and their arrival times.
func (r *recorder) eventsOf(typ string) ([]client.Event, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []client.Event
	var ats []time.Time
	for i, ev := range r.events {
		if ev.Type == typ {
			evs = append(evs, ev)
			ats = append(ats, r.at[i])
		}
	}
	return evs, ats
}

// between returns the arrivals in [from, to) and the longest silence
// between consecutive ones there (the edges of the window included).
func between(as []arrival, from, to time.Time) (n int, longest time.Duration) {
	last := from
	for _, a := range as {
		if a.at.Before(from) || !a.at.Before(to) {
			continue
		}
		n++
		longest = max(longest, a.at.Sub(last))
		last = a.at
	}
	return n, max(longest, to.Sub(last))
}

// streamer sends a 640-byte chunk every 20 ms in real time and remembers
// when it sent each.
type streamer struct {
	mu   sync.Mutex
	sent []time.Time
	errs []error
}

func stream(ctx context.Context, c *client.Conn) *streamer {
	s := &streamer{}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := c.SendBinary(ctx, make([]byte, 640))
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.sent = append(s.sent, time.Now())
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// sentAt returns when the k-th chunk was sent, if it was.
func (s *streamer) sentAt(k int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k < 0 || k >= len(s.sent) {
		return time.Time{}, false
	}
	return s.sent[k], true
}

// latencies returns, for the chunks sent in [from, to) that arrived, how
// long each took from the speaker's send to the listener: the speaker's k-th
// chunk carries sequence number base+k. A delay the server adds shows here,
// while a pause of the test's own sender (a loaded machine) does not.
func (s *streamer) latencies(as []arrival, base uint32, from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, a := range as {
		sent, ok := s.sentAt(int(a.seq - base))
		if ok && !sent.Before(from) && sent.Before(to) {
			out = append(out, a.at.Sub(sent))
		}
	}
	slices.Sort(out)
	return out
}

// pct is the p-th percentile of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// sentBetween counts the chunks sent in [from, to).
func (s *streamer) sentBetween(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.sent {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// metric reads one sample of a node's /metrics (0 if absent: a check
// must not pass on a 0).
func metric(t *testing.T, n *testserver.Node, sample string) float64 {
	t.Helper()
	body, err := httpGet(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// broadcast is a speaker on node a sending 20 ms chunks in real time, with a
// listener on a (local) and one on b (remote), all they receive recorded.
type broadcast struct {
	a, b                         *testserver.Node
	id                           string
	speaker                      *client.Conn
	onLocal, onRemote, onSpeaker *recorder
	chunks                       *streamer
	sched                        *schedProbe
	stop                         context.CancelFunc
}

func (c *cluster) broadcast() *broadcast {
	c.t.Helper()
	bc := &broadcast{a: c.realNode(), b: c.realNode()}
	bc.speaker, bc.id = speaker(c.t, bc.a, "alice")
	local, _ := listener(c.t, bc.a, bc.id, "es")
	remote, _ := listener(c.t, bc.b, bc.id, "fr")
	bg, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	bc.stop = cancel
	bc.onLocal, bc.onRemote, bc.onSpeaker = record(bg, local), record(bg, remote), record(bg, bc.speaker)
	bc.chunks = stream(bg, bc.speaker)
	bc.sched = probeScheduling(bg)
	return bc
}

// timely checks that the chunks of lat (send-to-listener latencies in
// [from, to)) took at most 100 ms, plus however long the test process
// itself was held up then.
func (bc *broadcast) timely(t *testing.T, what string, lat []time.Duration, from, to time.Time) {
	t.Helper()
	held := bc.sched.worst(from, to)
	t.Logf("%s: latency p50 %v, p99 %v, max %v; the test process was held up %v at worst",
		what, pct(lat, .5).Round(time.Millisecond), pct(lat, .99).Round(time.Millisecond),
		pct(lat, 1).Round(time.Millisecond), held.Round(time.Millisecond))
	if worst := pct(lat, 1); worst > 100*time.Millisecond+held {
		t.Errorf("%s: a chunk took %v from the speaker to the listener: silence over 100 ms (+%v the machine held the test up)",
			what, worst, held.Round(time.Millisecond))
	}
}

// schedProbe measures how late the test process itself runs: a goroutine
// that sleeps 5 ms at a time and records how much longer each sleep took. A
// delay the machine imposes on every goroutine (a CI machine running
// browsers alongside) shows here too, and is not the server's doing.
type schedProbe struct {
	mu   sync.Mutex
	late []arrival // at: when the sleep ended; seq: lateness in µs
}

func probeScheduling(ctx context.Context) *schedProbe {
	p := &schedProbe{}
	go func() {
		for ctx.Err() == nil {
			start := time.Now()
			time.Sleep(5 * time.Millisecond)
			end := time.Now()
			late := end.Sub(start) - 5*time.Millisecond
			p.mu.Lock()
			p.late = append(p.late, arrival{seq: uint32(late.Microseconds()), at: end})
			p.mu.Unlock()
		}
	}()
	return p
}

// worst is the longest the process was held up in [from, to).
func (p *schedProbe) worst(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var w time.Duration
	for _, l := range p.late {
		if !l.at.Before(from) && l.at.Before(to) {
			w = max(w, time.Duration(l.seq)*time.Microsecond)
		}
	}
	return w
}
