package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
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

// Reassert re-asserts what this node holds in the shared state, so that
// whatever a lost Leave, an outage or a Redis that lost its data left wrong
// heals by itself. It runs every ReassertInterval:
//
//   - this node's true listener count of every session it holds;
//   - the record of every session this node holds (its speaker is here, its
//     grace runs here, or it created it and no speaker attached yet), if the
//     store lost it: the record is what joins read, and it is also the
//     session ID's reservation;
//   - for a speaker on air here, the record's speaker facts, if another node
//     took the speaker for gone (its grace started while the speaker never
//     left).
//
// The sequence counter needs no re-assertion: every chunk sent raises it.
func (s *Service) Reassert(ctx context.Context) {
	held := s.held()
	for _, l := range held {
		_, byLang := l.room.Distribution()
		if err := s.presence.Reconcile(ctx, l.id, byLang); err != nil {
			s.log.Warn("listener counts not re-asserted", "sessionId", l.id, "err", err)
			return
		}
	}
	// Records are re-asserted only while this node's own heartbeat is up:
	// otherwise another node would read the record, find its holder dead
	// and start the speaker's grace.
	if alive, err := s.presence.Alive(ctx, s.node); err != nil || !alive {
		return
	}
	for _, l := range held {
		if err := l.reassertRecord(ctx); err != nil {
			s.log.Warn("session record not re-asserted", "sessionId", l.id, "err", err)
			return
		}
	}
}

// reassertRecord re-creates the session's record if this node holds it and
// the store lost it, and restores the speaker facts of a speaker on air here.
func (l *liveSession) reassertRecord(ctx context.Context) error {
	s := l.s
	l.mu.Lock()
	rec := l.rec.Clone()
	onAir := l.primary != nil
	holds := !l.ended && rec.SpeakerNode == s.node &&
		(onAir || l.graceTimer != nil || rec.SpeakerAttachedAt.IsZero())
	l.mu.Unlock()
	if !holds {
		return nil
	}
	stored, err := s.store.Get(ctx, l.id)
	switch {
	case pentecost.ErrorCode(err) == pentecost.ErrSessionNotFound:
		rec.NextSeq = l.room.NextSeq()
		if onAir {
			rec.SpeakerLive, rec.GraceUntil = true, time.Time{}
		}
		err := s.store.Create(ctx, rec)
		if pentecost.ErrorCode(err) == pentecost.ErrSessionIDTaken {
			return nil // re-created meanwhile
		}
		if err != nil {
			return err
		}
		s.log.Warn("session record was missing from the store: re-created", "sessionId", l.id)
		s.obs.RecordReasserted("recreated")
		return nil
	case err != nil:
		return err
	case !onAir || stored.Ended() || !speakerFactsWrong(stored, rec, s.node):
		return nil
	}
	updated, err := s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
		if r.Ended() || !speakerFactsWrong(r, rec, s.node) {
			return errNotDue
		}
		r.SpeakerLive, r.GraceUntil = true, time.Time{}
		r.SpeakerNode, r.SpeakerEpoch = s.node, max(r.SpeakerEpoch, rec.SpeakerEpoch)
		return nil
	})
	if errors.Is(err, errNotDue) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Warn("the speaker is on air here but the record said otherwise: restored", "sessionId", l.id)
	s.obs.RecordReasserted("speaker")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.primary == nil || l.ended {
		return nil
	}
	l.setRecordLocked(updated)
	// The node that took the speaker for gone keeps a grace running in its
	// own copy of the record: tell it, as an attach would.
	s.emit(l.id, evSpeaker, speakerEvent{Epoch: updated.SpeakerEpoch})
	l.toListenersLocked(&protocol.SpeakerPresence{
		Header: protocol.H(protocol.TypeSpeakerReconnected, s.clock.Now()), SessionID: l.id,
	})
	return nil
}

// speakerFactsWrong reports whether stored misstates the speaker that mine
// (this node's record, its speaker on air here) says is on node: another
// node took it for gone, or a record written back from an older attach
// names another node.
func speakerFactsWrong(stored, mine *pentecost.Session, node string) bool {
	if stored.SpeakerEpoch < mine.SpeakerEpoch {
		return true
	}
	return stored.SpeakerNode == node && stored.SpeakerEpoch == mine.SpeakerEpoch &&
		(!stored.SpeakerLive || !stored.GraceUntil.IsZero())
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
