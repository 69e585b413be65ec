package ws

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// maxEndMessage bounds the speaker's parting text relayed to every listener.
const maxEndMessage = 500

func (c *conn) isClosing() bool { return c.q.Closing() }

// handleText handles one client JSON message. An error in reply to a
// message never closes the connection.
func (c *conn) handleText(b []byte) {
	if c.isClosing() {
		return
	}
	if !utf8.Valid(b) {
		c.sendError(pentecost.Errorf(pentecost.ErrInvalidMessage, "message is not valid UTF-8"), c.sessionID())
		return
	}
	m, err := protocol.DecodeClient(b)
	if err != nil {
		c.sendError(err, c.sessionID())
		return
	}
	action := protocol.CanonicalAction(m.Action)
	switch action {
	case protocol.ActHeartbeat:
		if !c.hbLimit.AllowN(c.clock.Now(), 1) {
			c.rateLimited("heartbeat", retryOf(c.hbLimit, c.clock.Now()))
			return
		}
		c.send(&protocol.HeartbeatAck{Header: protocol.H(protocol.TypeHeartbeatAck, c.clock.Now()), ClientTimestamp: m.Timestamp})
		return
	case protocol.ActAudioChunk:
		c.jsonAudio(m)
		return
	case protocol.ActPublishAudio, protocol.ActPublishCaption:
		// Processors are authenticated engines serving many sessions and
		// languages at once: the per-connection control limit would throttle
		// them, so they are bounded by the queue and size limits instead.
		c.processorMessage(m)
		return
	}
	if !c.ctrlLimit.AllowN(c.clock.Now(), 1) {
		c.rateLimited("control", retryOf(c.ctrlLimit, c.clock.Now()))
		return
	}
	c.mu.Lock()
	sp, li, identity := c.speaker, c.listener, c.identity
	c.mu.Unlock()
	sid := c.sessionID()
	switch action {
	case protocol.ActCreateSession:
		switch {
		case li != nil:
			c.sendError(unauthorizedAction(action, protocol.RoleListener), sid)
		case sp != nil:
			c.sendError(pentecost.Errorf(pentecost.ErrUnauthorizedAction, "this connection already broadcasts session %s; open a new connection for another session", sid), sid)
		case identity == nil:
			c.sendError(pentecost.Errorf(pentecost.ErrUnauthorized, "a speaker token is required to create a session: connect with token="), "")
		default:
			ms := 0
			if m.PacketMs != nil {
				if ms = *m.PacketMs; ms == 0 {
					ms = -1 // an explicit 0 is not a packet duration
				}
			}
			if err := c.createSession(*identity, sessions.CreateParams{
				SourceLanguage: m.SourceLanguage, QualityTier: m.QualityTier, AudioFormat: m.AudioFormat, PacketMs: ms,
			}); err != nil {
				c.sendError(err, "")
			}
		}
	case protocol.ActJoinSession:
		c.joinMessage(m, sp, li)
	case protocol.ActPauseBroadcast, protocol.ActResumeBroadcast, protocol.ActMuteBroadcast, protocol.ActUnmuteBroadcast,
		protocol.ActSetVolume, protocol.ActSpeakerState, protocol.ActControlSession:
		if sp == nil {
			c.sendError(unauthorizedAction(action, c.roleName()), sid)
			return
		}
		if err := sp.Control(c.ctx, m); err != nil {
			c.sendError(err, sid)
		}
	case protocol.ActGetSessionStatus:
		if sp == nil {
			c.sendError(unauthorizedAction(action, c.roleName()), sid)
			return
		}
		c.send(sp.Status())
	case protocol.ActEndSession:
		if sp == nil {
			c.sendError(unauthorizedAction(action, c.roleName()), sid)
			return
		}
		if err := sp.End(c.ctx, pentecost.Truncate(m.Reason, maxEndMessage)); err != nil {
			c.sendError(err, sid)
		}
	case protocol.ActChangeLanguage:
		if li == nil {
			c.sendError(unauthorizedAction(action, c.roleName()), sid)
			return
		}
		if m.TargetLanguage == "" {
			c.sendError(pentecost.Missing("targetLanguage"), sid)
			return
		}
		msg, err := li.ChangeLanguage(c.ctx, m.TargetLanguage)
		if err != nil {
			c.sendError(err, sid)
			return
		}
		c.send(msg)
	case protocol.ActPausePlayback, protocol.ActResumePlayback:
		if li == nil {
			c.sendError(unauthorizedAction(action, c.roleName()), sid)
			return
		}
		c.send(li.SetPlayback(action == protocol.ActPausePlayback))
	case protocol.ActRefreshConnection:
		if c.isProcessor() {
			c.refreshInPlace()
			c.send(&protocol.ConnectionRefreshComplete{
				Header:       protocol.H(protocol.TypeConnectionRefreshComplete, c.clock.Now()),
				Role:         protocol.RoleProcessor,
				ConnectionID: c.id,
			})
			return
		}
		if sp == nil && li == nil {
			c.sendError(pentecost.Errorf(pentecost.ErrUnauthorizedAction, "refreshConnection needs a connection that has joined a session"), "")
			return
		}
		c.refreshInPlace()
		msg := &protocol.ConnectionRefreshComplete{
			Header:       protocol.H(protocol.TypeConnectionRefreshComplete, c.clock.Now()),
			SessionID:    sid,
			Role:         c.roleName(),
			ConnectionID: c.id,
		}
		if sp != nil {
			msg.SourceLanguage = sp.Session().SourceLanguage
		} else {
			info := li.Info()
			msg.TargetLanguage = info.TargetLanguage
			msg.SourceLanguage = info.Session.SourceLanguage
			msg.Codec = info.Codec
		}
		c.send(msg)
	case protocol.ActAttachProcessor:
		c.sendError(unauthorizedAction(action, c.roleName()), sid)
	default:
		c.sendError(pentecost.Errorf(pentecost.ErrInvalidAction, "unknown action %q", pentecost.Truncate(m.Action, 64)).With("action", pentecost.Truncate(m.Action, 64)), sid)
	}
}

func (c *conn) roleName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.role == "" {
		return "unjoined connection"
	}
	return c.role
}

func unauthorizedAction(action, role string) error {
	return pentecost.Errorf(pentecost.ErrUnauthorizedAction, "%s is not allowed for a %s", action, role).
		With("action", action).With("role", role)
}

// joinMessage handles a joinSession message: a first join for an unjoined
// connection, an idempotent sessionJoined again for the same session and
// language, or a language change.
func (c *conn) joinMessage(m *protocol.ClientMessage, sp *sessions.Speaker, li *sessions.Listener) {
	sid := c.sessionID()
	switch {
	case sp != nil:
		c.sendError(unauthorizedAction(protocol.ActJoinSession, protocol.RoleSpeaker), sid)
	case li == nil:
		b64, err := parseEncoding(m.AudioEncoding, false)
		if err != nil {
			c.sendError(err, m.SessionID)
			return
		}
		codec, err := protocol.ParseCodec("codec", m.Codec, protocol.CodecPCM16)
		if err != nil {
			c.sendError(err, m.SessionID)
			return
		}
		p := sessions.JoinParams{SessionID: m.SessionID, TargetLanguage: m.TargetLanguage, Base64: b64, Codec: codec}
		if err := c.join(p, false); err != nil {
			c.sendError(err, m.SessionID)
		}
	case m.SessionID != "" && m.SessionID != li.SessionID():
		c.sendError(pentecost.Invalid("sessionId", "this connection listens to "+li.SessionID()+"; open a new connection for another session"), sid)
	default:
		lang := m.TargetLanguage
		if lang == "" {
			lang = li.Language()
		}
		norm, err := pentecost.CheckTargetLanguage("targetLanguage", lang)
		if err != nil {
			c.sendError(err, sid)
			return
		}
		if norm != li.Language() {
			msg, err := li.ChangeLanguage(c.ctx, norm)
			if err != nil {
				c.sendError(err, sid)
				return
			}
			c.send(msg)
			return
		}
		c.send(joinedMessage(c, li.Info(), c.base64(), c.clock.Now()))
	}
}

// jsonAudio handles audioChunk/sendAudio: base64 audio bound to the
// connection's own session.
func (c *conn) jsonAudio(m *protocol.ClientMessage) {
	c.mu.Lock()
	sp := c.speaker
	c.mu.Unlock()
	sid := c.sessionID()
	if sp == nil {
		c.sendError(unauthorizedAction(m.Action, c.roleName()), sid)
		return
	}
	if m.SessionID != "" && m.SessionID != sp.SessionID() {
		c.sendError(pentecost.Errorf(pentecost.ErrForbidden, "this connection may only send audio to its own session").
			With("sessionId", pentecost.Truncate(m.SessionID, 64)), sid)
		return
	}
	data, present := m.Audio()
	if !present {
		c.sendError(pentecost.Missing("audioData"), sid)
		return
	}
	max := c.srv.cfg.AudioMaxChunk
	if base64.StdEncoding.DecodedLen(len(data)) > max+2 {
		c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", max).With("maxBytes", max), sid)
		return
	}
	chunk, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		c.sendError(pentecost.Invalid("audioData", "not valid base64"), sid)
		return
	}
	c.audio(sp, chunk)
}
