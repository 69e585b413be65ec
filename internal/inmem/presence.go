package inmem

import (
	"context"
	"sync"

	"github.com/pentecost/pentecost/sessions"
)

// table is what the peers of a Presence share: listener counts per session,
// node and language, and which nodes are up.
type table struct {
	mu     sync.Mutex
	counts map[string]map[string]map[string]int // session → node → language → listeners
	up     map[string]bool
}

// Presence is a sessions.Presence in memory. A single node has one; the
// nodes of an in-process cluster are peers of one (Peer), sharing counts.
type Presence struct {
	t    *table
	node string
}

// NewPresence returns the presence of node (sessions.NewNodeID).
func NewPresence(node string) *Presence {
	t := &table{counts: map[string]map[string]map[string]int{}, up: map[string]bool{}}
	return t.join(node)
}

func (t *table) join(node string) *Presence {
	t.mu.Lock()
	t.up[node] = true
	t.mu.Unlock()
	return &Presence{t: t, node: node}
}

// Peer returns the presence of another node, with a new random ID, sharing
// this one's counts.
func (p *Presence) Peer() *Presence { return p.t.join(sessions.NewNodeID()) }

// Stop takes the node down, as a crash does: its listeners leave every
// count, and Alive reports it gone.
func (p *Presence) Stop() {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	delete(p.t.up, p.node)
	for _, byNode := range p.t.counts {
		delete(byNode, p.node)
	}
}

// Start brings a stopped node up again (its heartbeat is back), with no
// listener counted.
func (p *Presence) Start() {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	p.t.up[p.node] = true
}

// Node implements sessions.Presence.
func (p *Presence) Node() string { return p.node }

// sumLocked is the session's listeners on the nodes that are up.
func (t *table) sumLocked(sid string) (int, map[string]int) {
	total, by := 0, map[string]int{}
	for node, langs := range t.counts[sid] {
		if !t.up[node] {
			continue
		}
		for lang, n := range langs {
			total += n
			by[lang] += n
		}
	}
	return total, by
}

// Join implements sessions.Presence.
func (p *Presence) Join(ctx context.Context, sid, lang string, max int, allowOver bool) (sessions.Admission, error) {
	if err := ctx.Err(); err != nil {
		return sessions.Admission{}, err
	}
	t := p.t
	t.mu.Lock()
	defer t.mu.Unlock()
	total, by := t.sumLocked(sid)
	if max > 0 && total >= max && !allowOver {
		return sessions.Admission{Total: total, Full: true}, nil
	}
	if t.counts[sid] == nil {
		t.counts[sid] = map[string]map[string]int{}
	}
	if t.counts[sid][p.node] == nil {
		t.counts[sid][p.node] = map[string]int{}
	}
	t.counts[sid][p.node][lang]++
	return sessions.Admission{Total: total + 1, NewLang: by[lang] == 0}, nil
}

// Leave implements sessions.Presence.
func (p *Presence) Leave(ctx context.Context, sid, lang string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := p.t
	t.mu.Lock()
	defer t.mu.Unlock()
	langs := t.counts[sid][p.node]
	if langs[lang] <= 1 {
		delete(langs, lang)
	} else {
		langs[lang]--
	}
	t.tidyLocked(sid)
	return nil
}

// Counts implements sessions.Presence.
func (p *Presence) Counts(ctx context.Context, sid string) (int, map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	total, by := p.t.sumLocked(sid)
	return total, by, nil
}

// Reconcile implements sessions.Presence.
func (p *Presence) Reconcile(ctx context.Context, sid string, byLang map[string]int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := p.t
	t.mu.Lock()
	defer t.mu.Unlock()
	langs := map[string]int{}
	for lang, n := range byLang {
		if n > 0 {
			langs[lang] = n
		}
	}
	if t.counts[sid] == nil {
		t.counts[sid] = map[string]map[string]int{}
	}
	t.counts[sid][p.node] = langs
	t.tidyLocked(sid)
	return nil
}

// tidyLocked forgets the empty maps of a session.
func (t *table) tidyLocked(sid string) {
	for node, langs := range t.counts[sid] {
		if len(langs) == 0 {
			delete(t.counts[sid], node)
		}
	}
	if len(t.counts[sid]) == 0 {
		delete(t.counts, sid)
	}
}

// Alive implements sessions.Presence.
func (p *Presence) Alive(ctx context.Context, node string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.t.up[node], nil
}
