package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Presence is who is where: this node's identity, the listeners of each
// session counted per node (so a dead node's listeners leave every count),
// the listener cap checked atomically across nodes, and whether a node is
// alive. A single node uses an in-memory presence (internal/inmem), a
// cluster one on Redis (internal/redis); both pass internal/presencetest.
type Presence interface {
	// Node is this node's ID: 8 bytes, hex-encoded.
	Node() string
	// Join counts one more listener of lang on this node unless the session
	// already has max listeners on all live nodes (max <= 0: no cap;
	// allowOver: a refresh may exceed it). The check and the count are one
	// atomic step.
	Join(ctx context.Context, sid, lang string, max int, allowOver bool) (Admission, error)
	// Leave counts one listener of lang on this node less.
	Leave(ctx context.Context, sid, lang string) error
	// Counts is the session's listeners on all live nodes.
	Counts(ctx context.Context, sid string) (total int, byLang map[string]int, err error)
	// Reconcile replaces this node's counts of the session with byLang,
	// repairing whatever a lost Leave or an outage left wrong.
	Reconcile(ctx context.Context, sid string, byLang map[string]int) error
	// Alive reports whether node is up.
	Alive(ctx context.Context, node string) (bool, error)
}

// NewNodeID returns a random node ID: 8 bytes, hex-encoded.
func NewNodeID() string {
	var b [originLen]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Admission is the answer to Presence.Join.
type Admission struct {
	Total   int  // listeners on all nodes after the join (at the refusal: before)
	NewLang bool // the language had no listener before
	Full    bool // refused: the session is at its cap
}

// Reassert writes this node's true listener counts of every session it
// holds into the presence, so whatever a lost Leave or an outage left wrong
// heals by itself. It runs every ReassertInterval.
func (s *Service) Reassert(ctx context.Context) {
	for _, l := range s.held() {
		_, byLang := l.room.Distribution()
		if err := s.presence.Reconcile(ctx, l.id, byLang); err != nil {
			s.log.Warn("listener counts not re-asserted", "sessionId", l.id, "err", err)
			return
		}
	}
}

// counts is session sid's listener count and distribution on every node. l
// (nil if this node holds none of the session) answers when presence does
// not.
func (s *Service) counts(sid string, l *liveSession) (int, map[string]int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	total, by, err := s.presence.Counts(ctx, sid)
	if err == nil {
		return total, by
	}
	if l != nil {
		return l.room.Distribution()
	}
	return 0, map[string]int{}
}
