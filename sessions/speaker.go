package sessions

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
)

// Speaker is a speaker connection's hold on its session. Only the session's
// owner gets one.
type Speaker struct {
	l      *liveSession
	conn   Conn
	active atomic.Bool // false once replaced, refreshed away or ended
}

// SessionID is the session this speaker broadcasts to.
func (sp *Speaker) SessionID() string { return sp.l.id }

// AttachSpeaker attaches c as the speaker of session id for owner. With
// refresh, the previous speaker connection stays accepted for the refresh
// overlap and is then closed; without, it is replaced at once (it gets
// connectionReplaced). Either way a speaker in its grace period is back.
func (s *Service) AttachSpeaker(ctx context.Context, c Conn, id, owner string, refresh bool) (*Speaker, *pentecost.Session, error) {
	if err := sessionid.Check(id); err != nil {
		return nil, nil, err
	}
	if owner == "" {
		return nil, nil, pentecost.Errorf(pentecost.ErrUnauthorized, "token has no sub claim")
	}
	l, err := s.open(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// Whichever node numbered the session's audio before, this one
	// continues above it.
	floor, ferr := s.bus.NextSeq(ctx, audioTopic(id))
	if ferr != nil {
		s.log.Warn("sequence floor unknown: numbering continues from this node's own", "sessionId", id, "err", ferr)
	}
	sp, rec, err := l.attachSpeaker(ctx, c, owner, refresh, floor)
	if err != nil {
		return nil, nil, err
	}
	if s.transcodes() && l.format == protocol.CodecPCM16 {
		// So does the numbering of the packets it encodes.
		if next, err := s.bus.NextSeq(ctx, convertedTopic(id)); err == nil {
			l.room.RaiseSeq(hub.ConvertedStream(protocol.CodecOpus, ""), next)
		}
	}
	// Listeners already on other nodes may want the Opus this node encodes:
	// no presence event will say so, they joined before.
	l.mu.Lock()
	l.noteRemoteListenersLocked()
	l.mu.Unlock()
	l.updateAudioSubscription()
	return sp, rec, nil
}

func (l *liveSession) attachSpeaker(ctx context.Context, c Conn, owner string, refresh bool, floor uint32) (*Speaker, *pentecost.Session, error) {
	s, id := l.s, l.id
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return nil, nil, pentecost.NotFound(id)
	}
	if l.rec.OwnerID != owner {
		return nil, nil, pentecost.Errorf(pentecost.ErrForbidden, "only the speaker who created session %s may attach to it", id).
			With("sessionId", id)
	}
	now := s.clock.Now()
	wasAway, firstOnAir := false, false
	rec, err := s.store.Update(ctx, id, func(r *pentecost.Session) error {
		if r.Ended() {
			return pentecost.NotFound(id)
		}
		if r.SpeakerAttachedAt.IsZero() {
			r.SpeakerAttachedAt = now
		}
		wasAway = !r.GraceUntil.IsZero()
		firstOnAir = !r.SpeakerLive
		r.SpeakerLive = true
		r.SpeakerNode = s.node
		r.SpeakerEpoch++
		r.GraceUntil = time.Time{}
		return nil
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	l.setRecordLocked(rec)
	l.room.RaiseNextSeq(floor)
	if l.startTimer != nil {
		l.startTimer.Stop()
		l.startTimer = nil
	}

	sp := &Speaker{l: l, conn: c}
	sp.active.Store(true)
	for cid, old := range l.speakers {
		if cid == c.ID() {
			continue
		}
		if refresh {
			s.closeAfterOverlap(old)
			continue
		}
		old.active.Store(false)
		delete(l.speakers, cid)
		send(old.conn, &protocol.ConnectionReplaced{Header: protocol.H(protocol.TypeConnectionReplaced, now), SessionID: id})
		old.conn.Close(1000, "connectionReplaced")
	}
	l.speakers[c.ID()] = sp
	l.primary = sp
	// The speaker's connections on other nodes are replaced, or closed
	// after the overlap of a refresh.
	s.emit(id, evSpeaker, speakerEvent{Refresh: refresh, Epoch: rec.SpeakerEpoch})
	if l.graceTimer != nil {
		l.graceTimer.Stop()
		l.graceTimer = nil
		wasAway = true
	}
	if wasAway {
		s.obs.GraceOutcome("reconnected")
	}
	if wasAway || firstOnAir {
		// Listeners waiting for the speaker hear it is on air, whether it
		// is back from a drop or here for the first time.
		l.toListenersLocked(&protocol.SpeakerPresence{
			Header: protocol.H(protocol.TypeSpeakerReconnected, now), SessionID: id,
		})
	}
	if refresh {
		s.obs.Refreshed(protocol.RoleSpeaker)
	}
	return sp, l.rec.Clone(), nil
}

// closeAfterOverlap closes the old connection of a refresh once the overlap
// has passed, unless the client closed it first. Its chunks stay accepted
// until then, so none is lost in the swap.
func (s *Service) closeAfterOverlap(old *Speaker) {
	s.clock.AfterFunc(s.cfg.RefreshOverlap, func() {
		l := old.l
		l.mu.Lock()
		cur, ok := l.speakers[old.conn.ID()]
		if ok && cur == old && l.primary != old {
			delete(l.speakers, old.conn.ID())
			old.active.Store(false)
		} else {
			ok = false
		}
		l.mu.Unlock()
		if ok {
			old.conn.Close(1000, "connectionRefreshed")
			l.updateAudioSubscription()
		}
	})
}

// CheckChunk refuses a chunk the session's format does not allow: in an
// Opus session, anything but a well-formed Opus packet.
func (sp *Speaker) CheckChunk(chunk []byte) error { return checkChunk(sp.l.format, chunk) }

// Audio fans a chunk out to the session's listeners, and converted to the
// other codec to those who take it. Chunks are dropped, without an error and
// without a sequence number, while the broadcast is paused or muted. The
// chunk may be reused by the caller after Audio returns.
func (sp *Speaker) Audio(chunk []byte) {
	l := sp.l
	if !sp.active.Load() || l.gated.Load() {
		return
	}
	now := l.s.clock.Now()
	src := *l.sourceLang.Load()
	seq, _ := l.room.Publish(src, chunk, now)
	l.forwardAudio(seq, now, chunk)
	l.convertSource(src, seq, now, chunk, true)
	if l.tapped.Load() {
		l.markIngest(seq, now) // only the processing-lag estimate reads it
	}
	l.s.obs.AudioIn(1)
}

// Leave is called when the speaker's connection has ended, for whatever
// reason. If it was the session's current speaker and the session was not
// ended, the speaker's grace starts: a page reload must not end a sermon.
func (sp *Speaker) Leave() {
	l := sp.l
	l.mu.Lock()
	if cur, ok := l.speakers[sp.conn.ID()]; !ok || cur != sp {
		l.mu.Unlock()
		return
	}
	delete(l.speakers, sp.conn.ID())
	sp.active.Store(false)
	gone := false
	if l.primary == sp {
		l.primary = nil
		for _, other := range l.speakers {
			l.primary = other
		}
		gone = l.primary == nil && !l.ended
	}
	l.mu.Unlock()
	if gone {
		l.speakerGone()
	}
	l.updateAudioSubscription()
	l.maybeRelease()
}

// Status is the session's status, as asked for by the speaker.
func (sp *Speaker) Status() *protocol.SessionStatus {
	l := sp.l
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statusLocked(protocol.StatusRequested)
}

// End ends the session at the speaker's request; message is the speaker's
// text for the listeners.
func (sp *Speaker) End(ctx context.Context, message string) error {
	_, err := sp.l.s.end(ctx, sp.l.id, pentecost.EndSpeakerEnded, message)
	return err
}

// Session returns a copy of the session record.
func (sp *Speaker) Session() *pentecost.Session {
	sp.l.mu.Lock()
	defer sp.l.mu.Unlock()
	return sp.l.rec.Clone()
}

// Listeners is the live listener count (every node's, in a cluster).
func (sp *Speaker) Listeners() int {
	n, _ := sp.l.counts()
	return n
}
