package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/pentecost/pentecost/protocol"
)

// SpeakParams say which session a speaker connection is for.
type SpeakParams struct {
	// SessionID attaches to an existing session (one created over HTTP, or
	// one this speaker lost its connection to); empty creates a session.
	SessionID      string
	SourceLanguage string // for creation; required by the server
	QualityTier    string // optional; the server's default is standard
	AudioFormat    string // what the speaker will send: optional; the server's default is pcm16
	// PacketMs is the session's packet duration, 20, 40 or 60: the
	// duration of each Opus packet; 0 leaves it to the server.
	PacketMs int
	Dial     DialOptions
}

// Speak opens a speaker connection: creating a session with the
// createSession query, or attaching to p.SessionID. It returns the
// connection and the server's answer, sessionCreated or sessionJoined. A
// refusal is a *ServerError.
func Speak(ctx context.Context, base, token string, p SpeakParams) (*Conn, Event, error) {
	q := url.Values{}
	want := protocol.TypeSessionJoined
	if p.SessionID == "" {
		want = protocol.TypeSessionCreated
		q.Set("action", protocol.ActCreateSession)
		q.Set("sourceLanguage", p.SourceLanguage)
		setIf(q, "qualityTier", p.QualityTier)
		setIf(q, "audioFormat", p.AudioFormat)
		if p.PacketMs != 0 {
			q.Set("packetMs", strconv.Itoa(p.PacketMs))
		}
	} else {
		q.Set("sessionId", p.SessionID)
	}
	setIf(q, "token", token)
	return open(ctx, base, q, p.Dial, want)
}

// ListenParams say which session and language a listener connection is for.
type ListenParams struct {
	SessionID string
	Language  string // target language
	// Encoding is "binary", "base64", or empty for the server's default
	// (binary for this query form).
	Encoding string
	// Codec is the codec to receive: protocol.CodecOpus, protocol.CodecPCM16,
	// or empty for the server's default (pcm16). The server may send
	// another (docs/protocol.md, 7.4): sessionJoined's "codec" says which.
	Codec string
	Dial  DialOptions
}

// Listen joins a session as a listener and returns the connection and its
// sessionJoined. encoding is "binary", "base64" or "" (binary).
func Listen(ctx context.Context, base, sessionID, lang, encoding string) (*Conn, Event, error) {
	return JoinListener(ctx, base, ListenParams{SessionID: sessionID, Language: lang, Encoding: encoding})
}

// JoinListener is Listen with dial options.
func JoinListener(ctx context.Context, base string, p ListenParams) (*Conn, Event, error) {
	q := url.Values{}
	q.Set("sessionId", p.SessionID)
	q.Set("targetLanguage", p.Language)
	setIf(q, "audioEncoding", p.Encoding)
	setIf(q, "codec", p.Codec)
	return open(ctx, base, q, p.Dial, protocol.TypeSessionJoined)
}

// RefreshParams describe a new-connection refresh (docs/protocol.md, "Connecting to /ws").
type RefreshParams struct {
	SessionID string
	Role      string // protocol.RoleSpeaker or protocol.RoleListener
	Token     string // speakers
	// Listeners: the language and encoding to keep, and the connection
	// being replaced, which lets the refresh exceed the listener cap.
	TargetLanguage       string
	AudioEncoding        string
	Codec                string
	PreviousConnectionID string
	Dial                 DialOptions
}

// Refresh opens the replacement connection of a refresh and waits for
// connectionRefreshComplete. The caller switches to it and closes the old one.
func Refresh(ctx context.Context, base string, p RefreshParams) (*Conn, Event, error) {
	q := url.Values{}
	q.Set("action", protocol.ActRefreshConnection)
	q.Set("sessionId", p.SessionID)
	q.Set("role", p.Role)
	setIf(q, "targetLanguage", p.TargetLanguage)
	setIf(q, "audioEncoding", p.AudioEncoding)
	setIf(q, "codec", p.Codec)
	setIf(q, "previousConnectionId", p.PreviousConnectionID)
	setIf(q, "token", p.Token)
	return open(ctx, base, q, p.Dial, protocol.TypeConnectionRefreshComplete)
}

// open dials and waits for the answer of type want. Other messages before
// it are skipped; an `error` message is the refusal.
func open(ctx context.Context, base string, q url.Values, opts DialOptions, want string) (*Conn, Event, error) {
	u, err := WSURL(base, q)
	if err != nil {
		return nil, Event{}, err
	}
	c, err := Dial(ctx, u, opts)
	if err != nil {
		return nil, Event{}, err
	}
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			c.CloseNow()
			return nil, Event{}, fmt.Errorf("waiting for %s: %w", want, c.explain(err))
		}
		switch ev.Type {
		case want:
			return c, ev, nil
		case protocol.TypeError:
			// The server closes with 4000+status right after; don't wait.
			c.CloseNow()
			return nil, ev, serverErrorFrom(ev)
		}
	}
}

// setIf leaves key out when value is empty, so that the server applies its
// default for a parameter the caller did not choose.
func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
