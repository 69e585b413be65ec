// Package pentecost holds the domain of the broadcast server: sessions, their
// states and the errors every layer speaks. It imports nothing of the project;
// every other package points at it.
package pentecost

import (
	"context"
	"time"
)

// Status is the single status field of a session, used by every path (HTTP
// PATCH, WebSocket control, expiry).
type Status string

const (
	StatusActive Status = "active"
	StatusPaused Status = "paused"
	StatusEnded  Status = "ended"
)

// Reasons a session ends; they are the wire values of sessionEnded.reason.
const (
	EndSpeakerEnded   = "speakerEnded"
	EndSpeakerTimeout = "speakerTimeout"
	EndExpired        = "expired"
	EndDeleted        = "deleted"
)

// Quality tiers and audio formats a session may declare.
const (
	TierStandard = "standard"
	TierPremium  = "premium"

	FormatPCM16 = "pcm16"
	FormatOpus  = "opus"
)

// BroadcastState is what listeners see of the speaker's controls.
type BroadcastState struct {
	IsActive        bool    `json:"isActive"`
	IsPaused        bool    `json:"isPaused"`
	IsMuted         bool    `json:"isMuted"`
	Volume          float64 `json:"volume"`
	LastStateChange int64   `json:"lastStateChange"` // Unix ms
}

// Session is the persisted record of a broadcast. Live facts (listener counts,
// the speaker's connection) are not stored here: they are derived from live
// connections so they can never drift.
type Session struct {
	ID             string `json:"sessionId"`
	OwnerID        string `json:"ownerId"`
	Status         Status `json:"status"`
	SourceLanguage string `json:"sourceLanguage"`
	QualityTier    string `json:"qualityTier"`
	AudioFormat    string `json:"audioFormat"`
	// PacketMs is the session's packet duration (20, 40 or 60 ms): of the
	// Opus packets the server encodes and Opus speakers send. Records made
	// before it existed hold 0; PacketDuration gives the default then.
	PacketMs  int            `json:"packetMs,omitempty"`
	Broadcast BroadcastState `json:"broadcastState"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	// ExpiresAt is when the session ends by itself if nothing else ends it
	// first: the maximum duration, or zero for unlimited.
	ExpiresAt time.Time `json:"expiresAt"`
	// SpeakerAttachedAt is when a speaker first attached; zero means the
	// session-start timeout still applies.
	SpeakerAttachedAt time.Time `json:"speakerAttachedAt,omitzero"`
	// SpeakerLive records that a speaker connection was attached when the
	// record was last written, so a restarted node knows to start the grace.
	SpeakerLive bool `json:"speakerLive,omitempty"`
	// SpeakerNode is the node that holds the session: its speaker's, or
	// before the first attach its creator's, so the others can tell when it
	// dies.
	SpeakerNode string `json:"speakerNode,omitempty"`
	// SpeakerEpoch counts the speaker's attachments; each node's news of
	// one carries it, so a node ignores news older than what it knows.
	SpeakerEpoch uint64 `json:"speakerEpoch,omitempty"`
	// GraceUntil is set while the speaker is away after an unexpected
	// drop: the session ends then unless the speaker is back.
	GraceUntil time.Time `json:"graceUntil,omitzero"`
	// NextSeq is the source stream's next sequence number, saved at a
	// graceful shutdown so a restarted node continues the numbering.
	NextSeq   uint32    `json:"nextSeq,omitempty"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	EndReason string    `json:"endReason,omitempty"`
	// Deleted sessions read as not found at once, but keep their ID reserved
	// for the retention period like any ended session.
	Deleted bool `json:"deleted,omitempty"`
}

// DefaultPacketMs is the packet duration of a session that chose none: 40 ms
// keeps the web apps' mouth-to-ear delay within 150 ms in low-delay mode
// and costs a listener about half the server CPU of 20 ms packets; 60 ms
// saves a third more CPU for 40-50 ms more delay (docs/benchmarks.md,
// "Opus: what a listener costs").
const DefaultPacketMs = 40

// PacketDuration is the session's packet duration in milliseconds.
func (s *Session) PacketDuration() int {
	if s.PacketMs == 0 {
		return DefaultPacketMs
	}
	return s.PacketMs
}

// Ended reports whether the session no longer accepts anyone.
func (s *Session) Ended() bool { return s.Status == StatusEnded }

// Clone returns a copy that can be changed without touching the original.
func (s *Session) Clone() *Session {
	c := *s
	return &c
}

// SessionStore persists session records. Implementations: bolt (embedded,
// single node) and redis (cluster). Every implementation passes the
// conformance suite in storetest.
type SessionStore interface {
	// Create stores a new session. It returns an *Error with code
	// ErrSessionIDTaken when the ID belongs to any record still kept (active,
	// or ended within the retention period).
	Create(ctx context.Context, s *Session) error
	// Get returns the record, ended ones included, or SESSION_NOT_FOUND.
	Get(ctx context.Context, id string) (*Session, error)
	// Update applies fn to the current record atomically and stores the
	// result. If fn returns an error nothing is written.
	Update(ctx context.Context, id string, fn func(*Session) error) (*Session, error)
	// List returns every record that is not ended.
	List(ctx context.Context) ([]*Session, error)
	// Sweep removes ended records whose EndedAt is before cutoff and returns
	// how many it removed.
	Sweep(ctx context.Context, cutoff time.Time) (int, error)
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	Close() error
}

// UnixMilli converts a time for the wire; the zero time is 0.
func UnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
