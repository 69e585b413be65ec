package clustertest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
)

// balancer is a round-robin TCP load balancer over the nodes that are up,
// like any load balancer that passes WebSockets.
type balancer struct {
	l        net.Listener
	mu       sync.Mutex
	backends []string
	next     int
}

func newBalancer(t *testing.T) *balancer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{l: l}
	go b.serve()
	t.Cleanup(func() { l.Close() })
	return b
}

func (b *balancer) set(addrs ...string) {
	b.mu.Lock()
	b.backends = addrs
	b.mu.Unlock()
}

func (b *balancer) serve() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		go b.forward(c)
	}
}

func (b *balancer) forward(c net.Conn) {
	b.mu.Lock()
	backends := append([]string(nil), b.backends...)
	start := b.next
	b.next++
	b.mu.Unlock()
	for i := range backends {
		u, err := net.DialTimeout("tcp", backends[(start+i)%len(backends)], time.Second)
		if err != nil {
			continue
		}
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		_, _ = io.Copy(c, u)
		c.Close()
		return
	}
	c.Close()
}

func addrOf(n *testserver.Node) string { return n.URL[len("http://"):] }

// Restart every node, one at a time, during a live session behind a load
// balancer: no session is lost and each listener's audio gap stays bounded.
// The figures it logs are in docs/cluster.md.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("streams in real time for several seconds")
	}
	c := newCluster(t, nil)
	nodes := []*testserver.Node{c.node(), c.node(), c.node()}
	lb := newBalancer(t)
	lb.set(addrOf(nodes[0]), addrOf(nodes[1]), addrOf(nodes[2]))
	base := "http://" + lb.l.Addr().String()

	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast := &client.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	sp, _, err := client.StartSpeaker(bg, client.SpeakerOptions{
		Base: base, Token: nodes[0].Token("alice"), Params: client.SpeakParams{SourceLanguage: "en"}, Backoff: fast,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	id := sp.SessionID()

	const listeners = 6
	type stats struct {
		mu      sync.Mutex
		seqs    map[uint32]bool
		last    time.Time
		maxGap  time.Duration
		maxSeq  uint32
		started bool
	}
	all := make([]*stats, listeners)
	var wg sync.WaitGroup
	for i := range all {
		st := &stats{seqs: map[uint32]bool{}}
		all[i] = st
		li, _, err := client.StartListener(bg, client.ListenerOptions{
			Base: base, Params: client.ListenParams{SessionID: id, Language: []string{"es", "fr", "de"}[i%3]}, Backoff: fast,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer li.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := li.Next(bg)
				if err != nil {
					return
				}
				f := ev.Audio
				if f == nil {
					continue
				}
				now := time.Now()
				st.mu.Lock()
				if st.started && now.Sub(st.last) > st.maxGap {
					st.maxGap = now.Sub(st.last)
				}
				st.started, st.last = true, now
				st.seqs[f.Header.Sequence] = true
				if f.Header.Sequence > st.maxSeq {
					st.maxSeq = f.Header.Sequence
				}
				st.mu.Unlock()
			}
		}()
	}

	// The speaker streams 20 ms chunks in real time.
	sent := make(chan int, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-bg.Done():
				sent <- n
				return
			case <-tick.C:
				if sp.SendAudio(bg, make([]byte, 640)) == nil {
					n++
				}
			}
		}
	}()

	settle := func() { time.Sleep(time.Second) } // let audio flow between restarts
	settle()
	for i := range nodes {
		old := nodes[i]
		rest := []string{}
		for j, n := range nodes {
			if j != i {
				rest = append(rest, addrOf(n))
			}
		}
		lb.set(rest...) // the balancer stops sending new connections to it
		old.Stop()      // drain: clients are told to move, then closed with 1012
		nodes[i] = c.node()
		lb.set(addrOf(nodes[0]), addrOf(nodes[1]), addrOf(nodes[2]))
		settle()
	}
	cancel()
	total := <-sent
	wg.Wait()

	// The session survived, on the new nodes.
	if code, v := getSession(t, nodes[0], id); code != 200 || v["status"] != "active" {
		t.Fatalf("session after the rolling restart: %d %v", code, v)
	}
	for i, st := range all {
		st.mu.Lock()
		missing := int(st.maxSeq) + 1 - len(st.seqs)
		t.Logf("listener %d: %d chunks heard of %d sent, %d missing in sequence, longest silence %v",
			i, len(st.seqs), total, missing, st.maxGap.Round(time.Millisecond))
		if len(st.seqs) < total/2 {
			t.Errorf("listener %d heard only %d of %d chunks", i, len(st.seqs), total)
		}
		st.mu.Unlock()
	}
}
