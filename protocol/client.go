package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/pentecost/pentecost"
)

// Client → server actions, aliases included.
const (
	ActHeartbeat         = "heartbeat"
	ActCreateSession     = "createSession"
	ActJoinSession       = "joinSession"
	ActAudioChunk        = "audioChunk"
	ActSendAudio         = "sendAudio" // alias of audioChunk
	ActPauseBroadcast    = "pauseBroadcast"
	ActResumeBroadcast   = "resumeBroadcast"
	ActMuteBroadcast     = "muteBroadcast"
	ActUnmuteBroadcast   = "unmuteBroadcast"
	ActSetVolume         = "setVolume"
	ActSpeakerState      = "speakerStateChange"
	ActControlSession    = "controlSession"
	ActGetSessionStatus  = "getSessionStatus"
	ActEndSession        = "endSession"
	ActChangeLanguage    = "changeLanguage"
	ActSwitchLanguage    = "switchLanguage" // alias of changeLanguage
	ActPausePlayback     = "pausePlayback"
	ActResumePlayback    = "resumePlayback"
	ActRefreshConnection = "refreshConnection"
	ActAttachProcessor   = "attachProcessor"
	ActPublishAudio      = "publishAudio"
	ActPublishCaption    = "publishCaption"
	// ActAuthenticate is the first message of a connection opened with
	// auth=message: {"action":"authenticate","token":"JWT"}.
	ActAuthenticate = "authenticate"
)

// SpeakerState is the body of speakerStateChange; nil fields are unchanged.
type SpeakerState struct {
	IsPaused *bool    `json:"isPaused,omitempty"`
	IsMuted  *bool    `json:"isMuted,omitempty"`
	Volume   *float64 `json:"volume,omitempty"`
}

// ClientMessage is any client → server JSON message. Which fields matter
// depends on Action.
type ClientMessage struct {
	Action         string        `json:"action"`
	SessionID      string        `json:"sessionId,omitempty"`
	SourceLanguage string        `json:"sourceLanguage,omitempty"`
	TargetLanguage string        `json:"targetLanguage,omitempty"`
	AudioEncoding  string        `json:"audioEncoding,omitempty"`
	QualityTier    string        `json:"qualityTier,omitempty"`
	AudioFormat    string        `json:"audioFormat,omitempty"`
	Codec          string        `json:"codec,omitempty"`
	PacketMs       *int          `json:"packetMs,omitempty"`
	AudioData      *string       `json:"audioData,omitempty"`
	Data           *string       `json:"data,omitempty"` // legacy alias of audioData
	VolumeLevel    *float64      `json:"volumeLevel,omitempty"`
	State          *SpeakerState `json:"state,omitempty"`
	Command        string        `json:"command,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	Text           string        `json:"text,omitempty"`
	Final          bool          `json:"final,omitempty"`
	Timestamp      *int64        `json:"timestamp,omitempty"`
}

// Audio returns the base64 audio of an audioChunk, whichever field carried
// it, and whether any did: an empty string is a 0-byte chunk, not a missing
// one.
func (m *ClientMessage) Audio() (string, bool) {
	switch {
	case m.AudioData != nil:
		return *m.AudioData, true
	case m.Data != nil:
		return *m.Data, true
	}
	return "", false
}

// CanonicalAction maps aliases to the action they stand for.
func CanonicalAction(a string) string {
	switch a {
	case ActSendAudio:
		return ActAudioChunk
	case ActSwitchLanguage:
		return ActChangeLanguage
	}
	return a
}

// DecodeClient parses one client text frame. Errors are *pentecost.Error with
// the codes of docs/protocol.md: INVALID_MESSAGE for anything that is
// not a JSON object, MISSING_PARAMETER when action is absent, and
// INVALID_PARAMETER (naming the field) when a field has the wrong type.
func DecodeClient(b []byte) (*ClientMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, pentecost.Errorf(pentecost.ErrInvalidMessage, "message is not a JSON object")
	}
	var m ClientMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, pentecost.Invalid(te.Field, "expected "+te.Type.String()+", got JSON "+te.Value)
		}
		return nil, pentecost.Errorf(pentecost.ErrInvalidMessage, "malformed JSON: %s", trimErr(err))
	}
	if m.Action == "" {
		return nil, pentecost.Missing("action")
	}
	return &m, nil
}

func trimErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
