package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
)

var errAlreadyEnded = errors.New("session already ended")

var endMessages = map[string]string{
	pentecost.EndSpeakerEnded:   "The speaker ended the session.",
	pentecost.EndSpeakerTimeout: "The speaker did not come back in time.",
	pentecost.EndExpired:        "The session reached its time limit.",
	pentecost.EndDeleted:        "The session was deleted.",
}

// end ends session id for reason: the record is marked ended, everyone
// connected gets sessionEnded and is closed with 1000. Ending an ended
// session is not an error.
func (s *Service) end(ctx context.Context, id, reason, message string) (*pentecost.Session, error) {
	return s.endIf(ctx, id, reason, message, nil)
}

// errNotDue is endIf's guard saying no.
var errNotDue = errors.New("session end no longer due")

// endIf ends the session if guard (checked inside the store's transaction)
// still agrees; it returns errNotDue otherwise.
func (s *Service) endIf(ctx context.Context, id, reason, message string, guard func(*pentecost.Session) bool) (*pentecost.Session, error) {
	now := s.clock.Now()
	rec, err := s.store.Update(ctx, id, func(r *pentecost.Session) error {
		if guard != nil && !r.Ended() && !guard(r) {
			return errNotDue
		}
		if r.Ended() {
			if reason == pentecost.EndDeleted && !r.Deleted {
				r.Deleted = true
				r.UpdatedAt = now
				return nil
			}
			return errAlreadyEnded
		}
		r.Status = pentecost.StatusEnded
		r.EndedAt = now
		r.EndReason = reason
		r.SpeakerLive = false
		r.GraceUntil = time.Time{}
		r.Broadcast.IsActive = false
		r.Broadcast.LastStateChange = now.UnixMilli()
		r.Deleted = reason == pentecost.EndDeleted
		r.UpdatedAt = now
		return nil
	})
	switch {
	case errors.Is(err, errNotDue):
		return nil, err
	case errors.Is(err, errAlreadyEnded):
		rec, err = s.store.Get(ctx, id)
		if err != nil {
			return nil, unavailable(err)
		}
	case err != nil:
		if pentecost.ErrorCode(err) == pentecost.ErrSessionNotFound {
			return nil, err
		}
		// The store is down: the live session still ends for everyone
		// connected here; the record catches up on the next read.
		s.log.Warn("could not persist session end", "sessionId", id, "reason", reason, "err", err)
		if l := s.find(id); l != nil {
			l.finish(reason, message)
			s.drop(l)
		}
		return nil, unavailable(err)
	}
	if message == "" {
		message = endMessages[reason]
	}
	if err == nil {
		s.emit(id, evEnded, endEvent{Reason: reason, Message: message})
	}
	if l := s.find(id); l != nil {
		if l.finish(reason, message) {
			s.obs.SessionEnded(reason)
			s.log.Info("session ended", "sessionId", id, "reason", reason)
		}
		s.drop(l)
	}
	return rec, nil
}

// finish tells everyone the session ended and closes their connections. It
// reports false if the session had already finished.
func (l *liveSession) finish(reason, message string) bool {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return false
	}
	l.ended = true
	l.stopTimersLocked()
	if message == "" {
		message = endMessages[reason]
	}
	l.finishProcessorsLocked(reason, message)
	l.broadcastLocked(&protocol.SessionEnded{
		Header:    protocol.H(protocol.TypeSessionEnded, l.s.clock.Now()),
		SessionID: l.id,
		Reason:    reason,
		Message:   message,
	}, true)
	conns := l.speakerConnsLocked()
	for _, sp := range l.speakers {
		sp.active.Store(false)
	}
	for _, h := range l.listeners {
		conns = append(conns, h.conn)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close(1000, "sessionEnded")
	}
	return true
}
