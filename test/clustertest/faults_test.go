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

// metric reads one sample of a node's /metrics ("" if absent).
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
	return bc
}
