package sessions

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
)

// CreateParams are what a speaker chooses for a new session.
type CreateParams struct {
	SourceLanguage string
	QualityTier    string
	AudioFormat    string
	PacketMs       int // 0: Config.DefaultPacketMs
}

func (p *CreateParams) normalize() error {
	lang, err := pentecost.CheckSourceLanguage("sourceLanguage", p.SourceLanguage)
	if err != nil {
		return err
	}
	p.SourceLanguage = lang
	if p.QualityTier, err = choice("qualityTier", p.QualityTier, pentecost.TierStandard, pentecost.TierPremium); err != nil {
		return err
	}
	if p.AudioFormat, err = choice("audioFormat", p.AudioFormat, pentecost.FormatPCM16, pentecost.FormatOpus); err != nil {
		return err
	}
	p.PacketMs, err = protocol.CheckPacketMs(p.PacketMs)
	return err
}

// choice normalizes v (case, spaces) to one of the allowed values; empty is
// the first.
func choice(field, v string, allowed ...string) (string, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return allowed[0], nil
	}
	if slices.Contains(allowed, v) {
		return v, nil
	}
	return "", pentecost.Invalid(field, "must be "+strings.Join(allowed, " or "))
}

// Create makes a new session owned by owner (the JWT sub). WebSocket and HTTP
// creations both come here, so the per-user limit counts them together.
func (s *Service) Create(ctx context.Context, owner string, p CreateParams) (*pentecost.Session, error) {
	started := s.clock.Now()
	if owner == "" {
		return nil, pentecost.Errorf(pentecost.ErrUnauthorized, "token has no sub claim")
	}
	if err := p.normalize(); err != nil {
		return nil, err
	}
	if err := s.allowCreate(ctx, owner); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	rec := &pentecost.Session{
		OwnerID:        owner,
		Status:         pentecost.StatusActive,
		SourceLanguage: p.SourceLanguage,
		QualityTier:    p.QualityTier,
		AudioFormat:    p.AudioFormat,
		PacketMs:       cmp.Or(p.PacketMs, s.cfg.DefaultPacketMs, pentecost.DefaultPacketMs),
		Broadcast:      pentecost.BroadcastState{IsActive: true, Volume: 1, LastStateChange: now.UnixMilli()},
		CreatedAt:      now,
		UpdatedAt:      now,
		// This node holds the session until a speaker attaches.
		SpeakerNode: s.node,
	}
	if s.cfg.MaxDuration > 0 {
		rec.ExpiresAt = now.Add(s.cfg.MaxDuration)
	}
	_, err := s.ids.New(ctx, func(ctx context.Context, id string) error {
		rec.ID = id
		return s.store.Create(ctx, rec)
	})
	if err != nil {
		if e := pentecost.AsError(err); e != nil && e.Code == pentecost.ErrSessionIDExhausted {
			return nil, err
		}
		return nil, unavailable(err)
	}
	s.liveFor(rec)
	s.obs.SessionCreated(s.clock.Since(started))
	s.log.Info("session created", "sessionId", rec.ID, "sourceLanguage", rec.SourceLanguage)
	return rec.Clone(), nil
}

func (s *Service) allowCreate(ctx context.Context, owner string) error {
	if s.limit == nil || s.cfg.SessionsPerHour <= 0 {
		return nil
	}
	ok, retry, err := s.limit.Allow(ctx, "sessions:"+owner, s.cfg.SessionsPerHour)
	if err != nil {
		// A limiter that cannot answer must not stop a sermon from starting.
		s.log.Warn("session rate limit unavailable, allowing", "err", err)
		return nil
	}
	if !ok {
		s.obs.RateLimited("sessions")
		return RateLimited("you have created too many sessions; try again later", retry)
	}
	return nil
}

// RateLimited is RATE_LIMIT_EXCEEDED with retryAfter in whole seconds (at
// least 1).
func RateLimited(msg string, retry time.Duration) *pentecost.Error {
	secs := int((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return pentecost.Errorf(pentecost.ErrRateLimited, "%s", msg).With("retryAfter", secs)
}
