package ws

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessions"
)

// connect runs the connect flow the query asks for (docs/protocol.md, "Connecting to /ws").
// Any error it returns is sent and the connection closed with 4000+status.
func (c *conn) connect(r *http.Request) error {
	if c.srv.o.ConnectLimit != nil {
		if ok, retry := c.srv.o.ConnectLimit.Allow(c.ip.String()); !ok {
			c.srv.o.Observer.RateLimited("connect")
			return sessions.RateLimited("too many connection attempts from your network", retry)
		}
	}
	q := r.URL.Query()
	token := q.Get("token")
	switch auth := q.Get("auth"); auth {
	case "":
		if token == "" {
			if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
				token = strings.TrimSpace(h[7:])
			}
		}
	case authMessage:
		if token != "" {
			return pentecost.Invalid("auth", "auth=message and token= cannot be used together")
		}
		t, err := c.readAuthMessage()
		if errors.Is(err, errPeerClosed) {
			return nil // the close handshake runs its course in the read loop
		}
		if err != nil {
			return err
		}
		token = t
	default:
		return pentecost.Invalid("auth", "must be message")
	}
	action := q.Get("action")
	sessionID := q.Get("sessionId")
	role := q.Get("role")
	switch action {
	case protocol.ActCreateSession:
		id, err := c.verify(token)
		if err != nil {
			return err
		}
		ms, err := protocol.ParsePacketMs(q.Get("packetMs"))
		if err != nil {
			return err
		}
		return c.createSession(id, sessions.CreateParams{
			SourceLanguage: q.Get("sourceLanguage"),
			QualityTier:    q.Get("qualityTier"),
			AudioFormat:    q.Get("audioFormat"),
			PacketMs:       ms,
		})
	case protocol.ActRefreshConnection:
		switch role {
		case protocol.RoleSpeaker:
			return c.attachSpeaker(token, sessionID, true)
		case protocol.RoleListener:
			return c.joinListener(q, true, false)
		case "":
			return pentecost.Missing("role")
		default:
			return pentecost.Invalid("role", "must be speaker or listener")
		}
	case protocol.ActAttachProcessor:
		return c.attachProcessor(token, q.Get("languages"), q.Get("audio"), q.Get("codec"), q.Get("transcript"))
	case protocol.ActJoinSession, "":
		switch {
		case role == protocol.RoleSpeaker:
			return c.attachSpeaker(token, sessionID, false)
		case role != "" && role != protocol.RoleListener:
			return pentecost.Invalid("role", "must be speaker or listener")
		case sessionID == "" && token != "" && role == "":
			// A speaker that will send createSession as a message.
			id, err := c.verify(token)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.identity = &id
			c.mu.Unlock()
			return nil
		case sessionID == "" && !q.Has("targetLanguage") && role == "" && action == "":
			// A bare connection: it may join or create with a message.
			return nil
		case sessionID != "" && token != "" && !q.Has("targetLanguage") && role == "":
			return c.attachSpeaker(token, sessionID, false)
		default:
			return c.joinListener(q, false, action == protocol.ActJoinSession)
		}
	default:
		return pentecost.Errorf(pentecost.ErrInvalidAction, "unknown action %q", pentecost.Truncate(action, 64)).With("field", "action")
	}
}

// authMessage is the auth= value of a connection whose token comes in its
// first message, {"action":"authenticate","token":"JWT"}, rather than in the
// URL: browsers cannot set an Authorization header on a WebSocket, and query
// strings end up in proxy logs and browser consoles (docs/protocol.md, 4.3).
const authMessage = "message"

// authTimeout bounds the wait for that message, and authMaxBytes its size.
const (
	authTimeout  = 10 * time.Second
	authMaxBytes = 16 * 1024
)

var errPeerClosed = errors.New("peer closed before authenticating")

// readAuthMessage reads the connection's first message, before the read
// loop starts, and returns its token. Pings are answered meanwhile. Anything
// else, or nothing within authTimeout (by the injected clock), is
// UNAUTHORIZED: the caller refuses the connection with 4401.
func (c *conn) readAuthMessage() (string, error) {
	var (
		mu      sync.Mutex
		done    bool
		expired bool
	)
	timer := c.clock.AfterFunc(authTimeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			expired = true
			_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wakes the blocked read
		}
	})
	defer func() {
		timer.Stop()
		mu.Lock()
		done = true
		if expired {
			_ = c.nc.SetReadDeadline(time.Time{}) // the read loop waits for the close reply
		}
		mu.Unlock()
	}()
	bad := pentecost.Errorf(pentecost.ErrUnauthorized, `the first message must be {"action":"authenticate","token":"..."} (auth=message)`)
	// The same frame reader as the read loop, so every frame rule (masking,
	// reserved bits, fragments, sizes) holds before authentication too.
	r := newFrameReader(c.br, 4*authMaxBytes, func(ws.OpCode) int { return authMaxBytes })
	r.onFrame = c.touch
	for {
		ev := r.next()
		switch ev.kind {
		case evPing:
			c.q.Pong(ev.data)
		case evClose, evFail:
			c.closeServer(ev.code, ev.reason)
			return "", errPeerClosed
		case evGone:
			mu.Lock()
			exp := expired
			mu.Unlock()
			if exp {
				return "", pentecost.Errorf(pentecost.ErrUnauthorized, "no authenticate message within %s (auth=message)", authTimeout)
			}
			return "", errPeerClosed
		case evTooBig:
			return "", bad
		case evMessage:
			if ev.op != ws.OpText {
				return "", bad
			}
			var m struct {
				Action string `json:"action"`
				Token  string `json:"token"`
			}
			err := json.Unmarshal(ev.data, &m)
			r.release()
			if err != nil || m.Action != protocol.ActAuthenticate {
				return "", bad
			}
			if strings.TrimSpace(m.Token) == "" {
				return "", pentecost.Errorf(pentecost.ErrUnauthorized, "the authenticate message has no token")
			}
			return strings.TrimSpace(m.Token), nil
		}
	}
}

func (c *conn) verify(token string) (auth.Identity, error) {
	if token == "" {
		return auth.Identity{}, pentecost.Errorf(pentecost.ErrUnauthorized, "a speaker token is required (token= or Authorization: Bearer)")
	}
	if c.srv.o.Auth == nil {
		return auth.Identity{}, pentecost.Errorf(pentecost.ErrUnauthorized, "no token verifier is configured")
	}
	id, err := c.srv.o.Auth.Verify(c.ctx, token)
	if err != nil {
		return auth.Identity{}, err
	}
	if id.Subject == "" {
		return auth.Identity{}, pentecost.Errorf(pentecost.ErrUnauthorized, "token has no sub claim")
	}
	return id, nil
}

func (c *conn) createSession(id auth.Identity, p sessions.CreateParams) error {
	svc := c.srv.o.Sessions
	rec, err := svc.Create(c.ctx, id.Subject, p)
	if err != nil {
		return err
	}
	sp, rec, err := svc.AttachSpeaker(c.ctx, c, rec.ID, id.Subject, false)
	if err != nil {
		return err
	}
	c.bindSpeaker(sp, id)
	c.send(&protocol.SessionCreated{
		Header:         protocol.H(protocol.TypeSessionCreated, c.clock.Now()),
		SessionID:      rec.ID,
		SourceLanguage: rec.SourceLanguage,
		QualityTier:    rec.QualityTier,
		AudioFormat:    rec.AudioFormat,
		PacketMs:       rec.PacketDuration(),
		SampleRate:     protocol.SampleRate,
		Transcoding:    svc.Transcodes(),
		ConnectionID:   c.id,
		ExpiresAt:      pentecost.UnixMilli(svc.ExpiresAt(rec)),
	})
	return nil
}

func (c *conn) attachSpeaker(token, sessionID string, refresh bool) error {
	if sessionID == "" {
		return pentecost.Missing("sessionId")
	}
	if err := checkSessionID(sessionID); err != nil {
		return err
	}
	id, err := c.verify(token)
	if err != nil {
		return err
	}
	sp, rec, err := c.srv.o.Sessions.AttachSpeaker(c.ctx, c, sessionID, id.Subject, refresh)
	if err != nil {
		return err
	}
	c.bindSpeaker(sp, id)
	now := c.clock.Now()
	if refresh {
		c.send(&protocol.ConnectionRefreshComplete{
			Header:         protocol.H(protocol.TypeConnectionRefreshComplete, now),
			SessionID:      rec.ID,
			Role:           protocol.RoleSpeaker,
			SourceLanguage: rec.SourceLanguage,
			ConnectionID:   c.id,
		})
		return nil
	}
	c.send(&protocol.SessionJoined{
		Header:           protocol.H(protocol.TypeSessionJoined, now),
		SessionID:        rec.ID,
		Role:             protocol.RoleSpeaker,
		SourceLanguage:   rec.SourceLanguage,
		ConnectionID:     c.id,
		ListenerCount:    sp.Listeners(),
		BroadcastState:   rec.Broadcast,
		SpeakerConnected: true,
		Translated:       true,
		AudioFormat:      rec.AudioFormat,
		Codec:            rec.AudioFormat,
		SampleRate:       protocol.SampleRate,
		PacketMs:         rec.PacketDuration(),
		Transcoding:      c.srv.o.Sessions.Transcodes(),
	})
	return nil
}

func (c *conn) bindSpeaker(sp *sessions.Speaker, id auth.Identity) {
	c.mu.Lock()
	c.role = protocol.RoleSpeaker
	c.speaker = sp
	c.identity = &id
	c.mu.Unlock()
	c.srv.o.Observer.ConnectionOpened(protocol.RoleSpeaker)
}

func checkSessionID(id string) error {
	p := sessions.JoinParams{SessionID: id, TargetLanguage: "en"}
	return sessions.CheckJoin(&p)
}

// joinListener joins (or, with refresh, re-joins) a listener from query
// parameters. legacy marks the earlier deployment's action=joinSession
// query, whose clients read JSON only: without an explicit encoding they get
// base64.
func (c *conn) joinListener(q url.Values, refresh, legacy bool) error {
	p := sessions.JoinParams{
		SessionID:      q.Get("sessionId"),
		TargetLanguage: q.Get("targetLanguage"),
	}
	if refresh {
		p.PreviousConnectionID = q.Get("previousConnectionId")
	}
	enc := q.Get("audioEncoding")
	if enc == "" && refresh {
		// A refresh keeps the encoding of the connection it replaces; a
		// refresh naming none comes from the earlier deployment's clients,
		// which read JSON only.
		p.InheritEncoding = true
		legacy = p.PreviousConnectionID == ""
	}
	b64, err := parseEncoding(enc, legacy)
	if err != nil {
		return err
	}
	p.Base64 = b64
	codec := q.Get("codec")
	if codec == "" && refresh {
		p.InheritCodec = true
	}
	if p.Codec, err = protocol.ParseCodec("codec", codec, protocol.CodecPCM16); err != nil {
		return err
	}
	return c.join(p, refresh)
}

// parseEncoding reads audioEncoding; empty means base64 for the legacy
// flows and binary otherwise.
func parseEncoding(enc string, legacy bool) (bool, error) {
	switch strings.ToLower(enc) {
	case "":
		return legacy, nil
	case "binary":
		return false, nil
	case "base64":
		return true, nil
	}
	return false, pentecost.Invalid("audioEncoding", "must be binary or base64")
}

func (c *conn) join(p sessions.JoinParams, refresh bool) error {
	if err := sessions.CheckJoin(&p); err != nil {
		return err
	}
	if c.srv.o.JoinLimit != nil {
		if ok, retry := c.srv.o.JoinLimit.Allow(c.ip.String()); !ok {
			c.srv.o.Observer.RateLimited("join")
			return sessions.RateLimited("too many listeners joining from your network; try again shortly", retry)
		}
	}
	li, info, err := c.srv.o.Sessions.JoinListener(c.ctx, c, p)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.role = protocol.RoleListener
	c.listener = li
	c.b64 = info.Base64
	c.mu.Unlock()
	c.srv.o.Observer.ConnectionOpened(protocol.RoleListener)
	now := c.clock.Now()
	if refresh {
		c.send(&protocol.ConnectionRefreshComplete{
			Header:         protocol.H(protocol.TypeConnectionRefreshComplete, now),
			SessionID:      info.Session.ID,
			Role:           protocol.RoleListener,
			TargetLanguage: info.TargetLanguage,
			SourceLanguage: info.Session.SourceLanguage,
			ConnectionID:   c.id,
			Codec:          info.Codec,
		})
		return nil
	}
	c.send(joinedMessage(c, info, info.Base64, now))
	return nil
}

func joinedMessage(c *conn, info sessions.JoinInfo, base64 bool, now time.Time) *protocol.SessionJoined {
	enc := "binary"
	if base64 {
		enc = "base64"
	}
	return &protocol.SessionJoined{
		Header:           protocol.H(protocol.TypeSessionJoined, now),
		SessionID:        info.Session.ID,
		Role:             protocol.RoleListener,
		SourceLanguage:   info.Session.SourceLanguage,
		TargetLanguage:   info.TargetLanguage,
		ConnectionID:     c.id,
		ListenerCount:    info.ListenerCount,
		BroadcastState:   info.Session.Broadcast,
		SpeakerConnected: info.SpeakerConnected,
		Translated:       info.Translated,
		Captions:         info.Captions,
		AudioEncoding:    enc,
		AudioFormat:      info.Codec,
		Codec:            info.Codec,
		SampleRate:       protocol.SampleRate,
		PacketMs:         info.Session.PacketDuration(),
		Transcoding:      info.Transcoding,
	}
}

func (c *conn) attachProcessor(token, languages, audio, codec, transcript string) error {
	params, err := sessions.ParseProcessorParams(languages, audio)
	if err != nil {
		return err
	}
	if params.Codec, err = protocol.ParseCodec("codec", codec, protocol.CodecPCM16); err != nil {
		return err
	}
	if params.Transcript, err = sessions.ParseTranscript(transcript); err != nil {
		return err
	}
	id, err := c.verify(token)
	if err != nil {
		return err
	}
	if !id.Processor {
		return pentecost.Errorf(pentecost.ErrForbidden, "token does not carry the processor role")
	}
	c.mu.Lock()
	c.role = protocol.RoleProcessor
	c.identity = &id
	c.mu.Unlock()
	p := c.srv.o.Sessions.AttachProcessor(c.ctx, c, params)
	c.mu.Lock()
	c.processor = p
	c.mu.Unlock()
	c.srv.o.Observer.ConnectionOpened(protocol.RoleProcessor)
	return nil
}
