package protocol

import (
	"encoding/json"
	"time"

	"github.com/pentecost/pentecost"
)

// Server → client message types.
const (
	TypeSessionCreated            = "sessionCreated"
	TypeSessionJoined             = "sessionJoined"
	TypeHeartbeatAck              = "heartbeatAck"
	TypeConnectionRefreshRequired = "connectionRefreshRequired"
	TypeConnectionWarning         = "connectionWarning"
	TypeConnectionRefreshComplete = "connectionRefreshComplete"
	TypeConnectionReplaced        = "connectionReplaced"
	TypeBroadcastPaused           = "broadcastPaused"
	TypeBroadcastResumed          = "broadcastResumed"
	TypeBroadcastMuted            = "broadcastMuted"
	TypeBroadcastUnmuted          = "broadcastUnmuted"
	TypeVolumeChanged             = "volumeChanged"
	TypeSpeakerStateChanged       = "speakerStateChanged"
	TypeSpeakerDisconnected       = "speakerDisconnected"
	TypeSpeakerReconnected        = "speakerReconnected"
	TypeSessionStatus             = "sessionStatus"
	TypeLanguageChanged           = "languageChanged"
	TypePlaybackPaused            = "playbackPaused"
	TypePlaybackResumed           = "playbackResumed"
	TypeSessionEnded              = "sessionEnded"
	TypeConnectionTimeout         = "connectionTimeout"
	TypeAudioData                 = "audioData"
	TypeCaption                   = "caption"
	TypeError                     = "error"
	TypeProcessorAttached         = "processorAttached"
	TypeSessionStarted            = "sessionStarted"
	TypeLanguagesChanged          = "languagesChanged"
)

// Roles of a connection.
const (
	RoleSpeaker   = "speaker"
	RoleListener  = "listener"
	RoleProcessor = "processor"
)

// Reasons of connectionRefreshRequired.
const (
	RefreshMaxDuration    = "maxDuration"
	RefreshServerShutdown = "serverShutdown"
)

// Reasons of sessionStatus pushes.
const (
	StatusRequested      = "requested"
	StatusListenerChange = "listenerCountChange"
	StatusNewLanguage    = "newLanguage"
	StatusPeriodic       = "periodic"
)

// Message is any server → client message: a struct whose first fields are
// Type and Timestamp.
type Message interface{ MessageType() string }

// Header is embedded first in every server message.
type Header struct {
	Type      string `json:"type"`
	Timestamp int64  `json:"timestamp"`
}

func (h Header) MessageType() string { return h.Type }

// H builds a header stamped at now.
func H(typ string, now time.Time) Header { return Header{Type: typ, Timestamp: now.UnixMilli()} }

// Marshal encodes a server message. The message types hold only JSON-safe
// values, so an error here is a programming error and panics.
func Marshal(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("protocol: marshal " + m.MessageType() + ": " + err.Error())
	}
	return b
}

type SessionCreated struct {
	Header
	SessionID      string `json:"sessionId"`
	SourceLanguage string `json:"sourceLanguage"`
	QualityTier    string `json:"qualityTier"`
	AudioFormat    string `json:"audioFormat"`
	PacketMs       int    `json:"packetMs,omitempty"`
	SampleRate     int    `json:"sampleRate,omitempty"`
	// Transcoding tells whether this node converts between pcm16 and opus
	// (false in a build without Opus).
	Transcoding  bool   `json:"transcoding"`
	ConnectionID string `json:"connectionId"`
	ExpiresAt    int64  `json:"expiresAt"`
}

type SessionJoined struct {
	Header
	SessionID      string                   `json:"sessionId"`
	Role           string                   `json:"role"`
	SourceLanguage string                   `json:"sourceLanguage"`
	TargetLanguage string                   `json:"targetLanguage,omitempty"`
	ConnectionID   string                   `json:"connectionId"`
	ListenerCount  int                      `json:"listenerCount"`
	BroadcastState pentecost.BroadcastState `json:"broadcastState"`
	// SpeakerConnected tells a listener whether it waits for the speaker.
	SpeakerConnected bool `json:"speakerConnected"`
	// Translated is false when the listener will hear the source audio
	// (kind 0) although its language differs from the source: no processor
	// serves it, or the one that does sends captions only.
	Translated bool `json:"translated"`
	// Captions is true when a processor serves the listener's language, so
	// its translated captions arrive; with Translated false, the language
	// is served with captions only. False for a speaker.
	Captions      bool   `json:"captions"`
	AudioEncoding string `json:"audioEncoding,omitempty"`
	// AudioFormat is, for a listener, the codec it receives (equal to
	// Codec, for clients written before Codec); for a speaker, the
	// session's format, which it sends.
	AudioFormat string `json:"audioFormat"`
	Codec       string `json:"codec,omitempty"`
	SampleRate  int    `json:"sampleRate,omitempty"`
	PacketMs    int    `json:"packetMs,omitempty"`
	Transcoding bool   `json:"transcoding"`
}

type HeartbeatAck struct {
	Header
	ClientTimestamp *int64 `json:"clientTimestamp,omitempty"`
}

type ConnectionRefreshRequired struct {
	Header
	SessionID      string `json:"sessionId"`
	Role           string `json:"role"`
	TargetLanguage string `json:"targetLanguage,omitempty"`
	ConnectionID   string `json:"connectionId"`
	Reason         string `json:"reason"`
	RefreshBy      int64  `json:"refreshBy"`
}

type ConnectionWarning struct {
	Header
	RemainingMinutes float64 `json:"remainingMinutes"`
	Message          string  `json:"message"`
}

type ConnectionRefreshComplete struct {
	Header
	SessionID      string `json:"sessionId"`
	Role           string `json:"role"`
	TargetLanguage string `json:"targetLanguage,omitempty"`
	SourceLanguage string `json:"sourceLanguage"`
	ConnectionID   string `json:"connectionId"`
	// Codec is what a listener's new connection receives.
	Codec string `json:"codec,omitempty"`
}

type ConnectionReplaced struct {
	Header
	SessionID string `json:"sessionId"`
}

// BroadcastChanged is broadcastPaused/Resumed/Muted/Unmuted and
// speakerStateChanged.
type BroadcastChanged struct {
	Header
	SessionID      string                   `json:"sessionId"`
	BroadcastState pentecost.BroadcastState `json:"broadcastState"`
}

type VolumeChanged struct {
	Header
	SessionID   string  `json:"sessionId"`
	VolumeLevel float64 `json:"volumeLevel"`
}

type SpeakerPresence struct {
	Header
	SessionID    string `json:"sessionId"`
	GraceSeconds *int   `json:"graceSeconds,omitempty"`
}

type SessionStatus struct {
	Header
	SessionID            string                   `json:"sessionId"`
	ListenerCount        int                      `json:"listenerCount"`
	LanguageDistribution map[string]int           `json:"languageDistribution"`
	SessionDuration      int64                    `json:"sessionDuration"`
	BroadcastState       pentecost.BroadcastState `json:"broadcastState"`
	UpdateReason         string                   `json:"updateReason"`
}

type LanguageChanged struct {
	Header
	SessionID      string `json:"sessionId"`
	TargetLanguage string `json:"targetLanguage"`
	SourceLanguage string `json:"sourceLanguage"`
	Translated     bool   `json:"translated"`
	Captions       bool   `json:"captions"`
}

// SessionRef is playbackPaused/Resumed and other messages carrying only the
// session.
type SessionRef struct {
	Header
	SessionID string `json:"sessionId"`
}

type SessionEnded struct {
	Header
	SessionID string `json:"sessionId"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

type ConnectionTimeout struct {
	Header
	IdleSeconds int `json:"idleSeconds"`
}

type AudioData struct {
	Header
	SessionID      string `json:"sessionId"`
	TargetLanguage string `json:"targetLanguage"`
	SequenceNumber uint32 `json:"sequenceNumber"`
	Kind           int    `json:"kind"`
	AudioData      string `json:"audioData"`
	Format         string `json:"format"` // the codec of the chunk
}

type Caption struct {
	Header
	SessionID      string `json:"sessionId"`
	TargetLanguage string `json:"targetLanguage"`
	Text           string `json:"text"`
	Final          bool   `json:"final"`
	SequenceNumber uint32 `json:"sequenceNumber"`
}

type ErrorMessage struct {
	Header
	Code      string         `json:"code"`
	Status    int            `json:"status"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details,omitempty"`
	SessionID string         `json:"sessionId,omitempty"`
}

// ErrorFrom turns an *pentecost.Error into its wire message.
func ErrorFrom(e *pentecost.Error, sessionID string, now time.Time) *ErrorMessage {
	return &ErrorMessage{
		Header:    H(TypeError, now),
		Code:      e.Code,
		Status:    e.Status(),
		Message:   e.Message,
		Details:   e.Details,
		SessionID: sessionID,
	}
}

type ProcessorAttached struct {
	Header
	ConnectionID string `json:"connectionId"`
	// Languages the processor serves; empty means every language.
	Languages []string `json:"languages"`
	// Audio lists the languages it publishes audio for, when it named them
	// (audio=); empty means none (captions only); absent means every
	// language it serves, as before the parameter existed.
	Audio *[]string `json:"audio,omitempty"`
	// Codec is the one the processor asked for (pcm16 by default); each
	// sessionStarted says what it gets in that session.
	Codec string `json:"codec,omitempty"`
	// Transcript echoes transcript=true: the processor may be assigned a
	// session's source language, to publish its transcript. Absent when
	// false, and from servers without transcript processors.
	Transcript bool `json:"transcript,omitempty"`
}

type SessionStarted struct {
	Header
	SessionID      string `json:"sessionId"`
	StreamID       uint16 `json:"streamId"`
	SourceLanguage string `json:"sourceLanguage"`
	// AudioFormat is the codec this processor receives the session's
	// audio in, and must publish its translations in.
	AudioFormat string `json:"audioFormat"`
	SampleRate  int    `json:"sampleRate,omitempty"`
	PacketMs    int    `json:"packetMs,omitempty"`
}

// LanguagesChanged tells a processor which target languages of a session it
// is to serve: those with listeners that it was assigned.
type LanguagesChanged struct {
	Header
	SessionID string   `json:"sessionId"`
	StreamID  uint16   `json:"streamId"`
	Languages []string `json:"languages"`
}
