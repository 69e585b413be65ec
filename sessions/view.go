package sessions

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
)

// View is the public description of a session (HTTP API): no owner identity
// anywhere, and live facts derived from live connections.
type View struct {
	SessionID            string                   `json:"sessionId"`
	Status               pentecost.Status         `json:"status"`
	SourceLanguage       string                   `json:"sourceLanguage"`
	QualityTier          string                   `json:"qualityTier"`
	AudioFormat          string                   `json:"audioFormat"`
	PacketMs             int                      `json:"packetMs"`
	ListenerCount        int                      `json:"listenerCount"`
	LanguageDistribution map[string]int           `json:"languageDistribution"`
	SpeakerConnected     bool                     `json:"speakerConnected"`
	CreatedAt            int64                    `json:"createdAt"`
	UpdatedAt            int64                    `json:"updatedAt"`
	ExpiresAt            int64                    `json:"expiresAt"`
	EndedAt              int64                    `json:"endedAt,omitempty"`
	EndReason            string                   `json:"endReason,omitempty"`
	BroadcastState       pentecost.BroadcastState `json:"broadcastState"`
	// TranslatedLanguages lists the target languages a processor attached
	// to this node would serve now (their listeners get its captions), so
	// that a listener app can offer them first; empty once ended.
	TranslatedLanguages []string `json:"translatedLanguages"`
	// AudioLanguages lists those of them that would get translated audio;
	// the others are served with captions only, over the source audio.
	AudioLanguages []string `json:"audioLanguages"`
	// Transcript says whether source-language listeners get the
	// transcript: a transcript processor attached to this node serves the
	// source language now, or would for a listener joining; false once
	// ended.
	Transcript bool `json:"transcript"`
}

func (s *Service) view(rec *pentecost.Session) *View {
	v := &View{
		SessionID:            rec.ID,
		Status:               rec.Status,
		SourceLanguage:       rec.SourceLanguage,
		QualityTier:          rec.QualityTier,
		AudioFormat:          rec.AudioFormat,
		PacketMs:             rec.PacketDuration(),
		LanguageDistribution: map[string]int{},
		CreatedAt:            pentecost.UnixMilli(rec.CreatedAt),
		UpdatedAt:            pentecost.UnixMilli(rec.UpdatedAt),
		ExpiresAt:            pentecost.UnixMilli(s.expiresAt(rec)),
		EndedAt:              pentecost.UnixMilli(rec.EndedAt),
		EndReason:            rec.EndReason,
		BroadcastState:       rec.Broadcast,
		TranslatedLanguages:  []string{},
		AudioLanguages:       []string{},
	}
	if rec.Ended() {
		return v
	}
	l := s.find(rec.ID)
	v.TranslatedLanguages, v.AudioLanguages, v.Transcript = s.translatedLanguages(rec.SourceLanguage, l)
	v.ListenerCount, v.LanguageDistribution = s.counts(rec.ID, l)
	if l == nil {
		// No connection of the session is here: the record knows whether
		// a speaker is on air on another node.
		v.SpeakerConnected = rec.SpeakerLive && rec.GraceUntil.IsZero()
		return v
	}
	l.mu.Lock()
	v.SpeakerConnected = l.speakerConnectedLocked()
	l.mu.Unlock()
	return v
}

// expiresAt is when the session ends by itself if nothing else ends it: the
// start timeout while no speaker has attached, else the maximum duration.
func (s *Service) expiresAt(rec *pentecost.Session) (t time.Time) {
	t = rec.ExpiresAt
	if rec.SpeakerAttachedAt.IsZero() && s.cfg.StartTimeout > 0 {
		start := rec.CreatedAt.Add(s.cfg.StartTimeout)
		if t.IsZero() || start.Before(t) {
			t = start
		}
	}
	return t
}

// ExpiresAt is the moment session rec ends by itself if nothing else ends it.
func (s *Service) ExpiresAt(rec *pentecost.Session) time.Time { return s.expiresAt(rec) }

// Get returns the public view of a session. An ended session reads as ended
// for the retention period; a deleted one is not found at once.
func (s *Service) Get(ctx context.Context, id string) (*View, error) {
	if err := sessionid.Check(id); err != nil {
		return nil, err
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(rec), nil
}

// CreateView creates a session and returns its view.
func (s *Service) CreateView(ctx context.Context, owner string, p CreateParams) (*View, error) {
	rec, err := s.Create(ctx, owner, p)
	if err != nil {
		return nil, err
	}
	return s.view(rec), nil
}

// PatchParams are the fields PATCH may change; nil means unchanged.
type PatchParams struct {
	Status         *string
	SourceLanguage *string
	QualityTier    *string
}

// Patch changes a session for its owner; changes take effect live.
func (s *Service) Patch(ctx context.Context, id, owner string, p PatchParams) (*View, error) {
	if err := sessionid.Check(id); err != nil {
		return nil, err
	}
	if p.Status == nil && p.SourceLanguage == nil && p.QualityTier == nil {
		return nil, pentecost.Errorf(pentecost.ErrInvalidParameters, "nothing to change: give status, sourceLanguage or qualityTier")
	}
	var status pentecost.Status
	if p.Status != nil {
		status = pentecost.Status(strings.ToLower(*p.Status))
		switch status {
		case pentecost.StatusActive, pentecost.StatusPaused, pentecost.StatusEnded:
		default:
			return nil, pentecost.Invalid("status", "must be active, paused or ended")
		}
	}
	var src, tier string
	if p.SourceLanguage != nil {
		lang, err := pentecost.CheckSourceLanguage("sourceLanguage", *p.SourceLanguage)
		if err != nil {
			return nil, err
		}
		src = lang
	}
	if p.QualityTier != nil {
		var err error
		if tier, err = choice("qualityTier", *p.QualityTier, pentecost.TierStandard, pentecost.TierPremium); err != nil {
			return nil, err
		}
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.OwnerID != owner {
		return nil, pentecost.Errorf(pentecost.ErrForbidden, "only the speaker who created session %s may change it", id).With("sessionId", id)
	}
	if rec.Ended() {
		return nil, pentecost.NotFound(id).With("status", "ended")
	}
	if status == pentecost.StatusEnded {
		rec, err := s.end(ctx, id, pentecost.EndSpeakerEnded, "")
		if err != nil {
			return nil, err
		}
		return s.view(rec), nil
	}
	l := s.liveFor(rec)
	if src != "" || tier != "" {
		if err := l.setDetails(ctx, src, tier); err != nil {
			return nil, err
		}
		if src != "" {
			l.sourceChanged()
		}
	}
	if status != "" {
		paused := status == pentecost.StatusPaused
		typ := protocol.TypeBroadcastResumed
		if paused {
			typ = protocol.TypeBroadcastPaused
		}
		if err := l.applyState(ctx, stateChange{paused: &paused}, typ); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	out := l.rec.Clone()
	l.mu.Unlock()
	return s.view(out), nil
}

// setDetails changes the source language or tier; a new source language
// re-routes audio at once, and the caller runs sourceChanged, which tells
// each listener with languageChanged.
func (l *liveSession) setDetails(ctx context.Context, src, tier string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.s.clock.Now()
	rec, err := l.s.store.Update(ctx, l.id, func(r *pentecost.Session) error {
		if src != "" {
			r.SourceLanguage = src
		}
		if tier != "" {
			r.QualityTier = tier
		}
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	l.setRecordLocked(rec)
	if src == "" {
		return nil
	}
	l.sourceLang.Store(&src)
	l.announceLocked() // processors learn the new source language; listeners after the rebalance (sourceChanged)
	l.s.emit(l.id, evDetails, detailsEvent{SourceLanguage: src})
	return nil
}

// Delete ends a session for its owner and forgets it at once: it reads as
// not found, while its ID stays reserved for the retention period.
func (s *Service) Delete(ctx context.Context, id, owner string) error {
	if err := sessionid.Check(id); err != nil {
		return err
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if rec.OwnerID != owner {
		return pentecost.Errorf(pentecost.ErrForbidden, "only the speaker who created session %s may delete it", id).With("sessionId", id)
	}
	_, err = s.end(ctx, id, pentecost.EndDeleted, "")
	return err
}

// translatedLanguages lists, sorted, the languages other than src that an
// attached processor serves (one that names none serves every language),
// and those of them that get translated audio: from the processor assigned
// now in the live session l, else from the one a listener joining would be
// given. transcript says the same of src: whether a transcript processor
// serves it.
func (s *Service) translatedLanguages(src string, l *liveSession) (translated, audio []string, transcript bool) {
	var assigned map[string]*Processor
	if l != nil {
		l.mu.Lock()
		assigned = maps.Clone(l.assign)
		l.mu.Unlock()
	}
	s.procMu.Lock()
	procs := slices.Clone(s.procs)
	s.procMu.Unlock()
	set := map[string]bool{}
	for _, p := range procs {
		if p.langs == nil {
			for _, l := range pentecost.Languages {
				set[l.Code] = true
			}
			continue
		}
		for l := range p.langs {
			set[l] = true
		}
	}
	delete(set, src)
	// The processor that serves (or would serve) lang.
	serving := func(lang string) *Processor {
		if p := assigned[lang]; p != nil && slices.Contains(procs, p) && p.eligible(lang, src) {
			return p
		}
		return pick(procs, lang, src)
	}
	translated, audio = make([]string, 0, len(set)), []string{}
	for lang := range set {
		translated = append(translated, lang)
		if p := serving(lang); p != nil && p.audioFor(lang, src) {
			audio = append(audio, lang)
		}
	}
	slices.Sort(translated)
	slices.Sort(audio)
	return translated, audio, serving(src) != nil
}
