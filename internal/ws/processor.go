package ws

import (
	"encoding/base64"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// processorFrame handles a processor's binary translated-audio frame.
func (c *conn) processorFrame(pr *sessions.Processor, b []byte) {
	f, err := protocol.ParseProcessorFrame(b)
	if err != nil {
		c.sendError(pentecost.Errorf(pentecost.ErrInvalidMessage, "malformed translated-audio frame: %v", err), "")
		return
	}
	if max := c.srv.cfg.AudioMaxChunk; len(f.Chunk) > max {
		c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", max).With("maxBytes", max), "")
		return
	}
	if err := pr.PublishAudio("", f.StreamID, true, f.Language, f.Chunk); err != nil {
		c.sendError(err, "")
	}
}

// processorMessage handles publishAudio and publishCaption.
func (c *conn) processorMessage(m *protocol.ClientMessage) {
	c.mu.Lock()
	pr := c.processor
	c.mu.Unlock()
	if pr == nil {
		c.sendError(unauthorizedAction(m.Action, c.roleName()), c.sessionID())
		return
	}
	if m.SessionID == "" {
		c.sendError(pentecost.Missing("sessionId"), "")
		return
	}
	if m.TargetLanguage == "" {
		c.sendError(pentecost.Missing("targetLanguage"), m.SessionID)
		return
	}
	switch m.Action {
	case protocol.ActPublishCaption:
		if err := pr.PublishCaption(m.SessionID, m.TargetLanguage, m.Text, m.Final); err != nil {
			c.sendError(err, m.SessionID)
		}
	case protocol.ActPublishAudio:
		data, present := m.Audio()
		if !present {
			c.sendError(pentecost.Missing("audioData"), m.SessionID)
			return
		}
		max := c.srv.cfg.AudioMaxChunk
		if base64.StdEncoding.DecodedLen(len(data)) > max+2 {
			c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", max).With("maxBytes", max), m.SessionID)
			return
		}
		chunk, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			c.sendError(pentecost.Invalid("audioData", "not valid base64"), m.SessionID)
			return
		}
		if len(chunk) == 0 {
			c.sendError(pentecost.Invalid("audioData", "an audio chunk must have at least 1 byte"), m.SessionID)
			return
		}
		if len(chunk) > max {
			c.sendError(pentecost.Errorf(pentecost.ErrAudioTooLarge, "audio chunk is over %d bytes", max).With("maxBytes", max), m.SessionID)
			return
		}
		if err := pr.PublishAudio(m.SessionID, 0, false, m.TargetLanguage, chunk); err != nil {
			c.sendError(err, m.SessionID)
		}
	}
}
