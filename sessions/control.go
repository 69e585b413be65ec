package sessions

import (
	"context"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
)

// stateChange is one change of the broadcast state; nil fields stay as they
// are. Every path that changes the broadcast (WebSocket controls, HTTP PATCH)
// goes through applyState, so there is one state and one acknowledgement.
type stateChange struct {
	paused *bool
	muted  *bool
	volume *float64
}

func ptr[T any](v T) *T { return &v }

// Control applies a speaker's control action. Every action is acknowledged
// with a message of its own type to the speaker and the same to every
// listener.
func (sp *Speaker) Control(ctx context.Context, m *protocol.ClientMessage) error {
	action := protocol.CanonicalAction(m.Action)
	var ch stateChange
	var typ string
	switch action {
	case protocol.ActPauseBroadcast:
		ch.paused, typ = ptr(true), protocol.TypeBroadcastPaused
	case protocol.ActResumeBroadcast:
		ch.paused, typ = ptr(false), protocol.TypeBroadcastResumed
	case protocol.ActMuteBroadcast:
		ch.muted, typ = ptr(true), protocol.TypeBroadcastMuted
	case protocol.ActUnmuteBroadcast:
		ch.muted, typ = ptr(false), protocol.TypeBroadcastUnmuted
	case protocol.ActControlSession:
		switch m.Command {
		case "pause":
			ch.paused, typ = ptr(true), protocol.TypeBroadcastPaused
		case "resume":
			ch.paused, typ = ptr(false), protocol.TypeBroadcastResumed
		case "":
			return pentecost.Missing("command")
		default:
			return pentecost.Invalid("command", "must be pause or resume")
		}
	case protocol.ActSetVolume:
		if m.VolumeLevel == nil {
			return pentecost.Missing("volumeLevel")
		}
		if err := checkVolume("volumeLevel", *m.VolumeLevel); err != nil {
			return err
		}
		ch.volume, typ = m.VolumeLevel, protocol.TypeVolumeChanged
	case protocol.ActSpeakerState:
		if m.State == nil {
			return pentecost.Missing("state")
		}
		if m.State.Volume != nil {
			if err := checkVolume("state.volume", *m.State.Volume); err != nil {
				return err
			}
		}
		ch = stateChange{paused: m.State.IsPaused, muted: m.State.IsMuted, volume: m.State.Volume}
		typ = protocol.TypeSpeakerStateChanged
	default:
		return pentecost.Errorf(pentecost.ErrInvalidAction, "unknown control action %q", m.Action)
	}
	return sp.l.applyState(ctx, ch, typ)
}

func checkVolume(field string, v float64) error {
	if v < 0 || v > 1 || v != v {
		return pentecost.Invalid(field, "must be between 0.0 and 1.0")
	}
	return nil
}

// applyState persists a broadcast-state change and tells the speaker and
// every listener with a message of type typ.
func (l *liveSession) applyState(ctx context.Context, ch stateChange, typ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return pentecost.NotFound(l.id)
	}
	now := l.s.clock.Now()
	rec, err := l.s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
		if r.Ended() {
			return pentecost.NotFound(r.ID)
		}
		b := &r.Broadcast
		if ch.paused != nil {
			b.IsPaused = *ch.paused
			if b.IsPaused {
				r.Status = pentecost.StatusPaused
			} else {
				r.Status = pentecost.StatusActive
			}
		}
		if ch.muted != nil {
			b.IsMuted = *ch.muted
		}
		if ch.volume != nil {
			b.Volume = *ch.volume
		}
		b.LastStateChange = now.UnixMilli()
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	l.setRecordLocked(rec)
	var msg protocol.Message
	switch typ {
	case protocol.TypeVolumeChanged:
		msg = &protocol.VolumeChanged{Header: protocol.H(typ, now), SessionID: l.id, VolumeLevel: rec.Broadcast.Volume}
	default:
		msg = &protocol.BroadcastChanged{Header: protocol.H(typ, now), SessionID: l.id, BroadcastState: rec.Broadcast}
	}
	l.broadcastLocked(msg, true)
	l.s.emit(l.id, evState, stateEvent{Broadcast: rec.Broadcast, Status: rec.Status, Message: protocol.Marshal(msg)})
	return nil
}
