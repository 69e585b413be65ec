// Package clienttest is a fake Pentecost server for tests of clients: it
// speaks just enough of docs/protocol.md (create, attach, join, refresh, audio
// fan-out with the 16-byte header, endSession, connect-time errors) and lets
// a test inject faults: refresh requests, dropped connections, skipped
// sequence numbers. It is not the real server and checks little.
package clienttest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Server is the fake. Its zero value is not usable; call NewServer.
type Server struct {
	URL string // http://127.0.0.1:port

	// RefreshOverlap is how long the old connection of a refresh stays
	// open before the server closes it (the real server: 2 s).
	RefreshOverlap time.Duration

	hs    *httptest.Server
	fanMu sync.Mutex // keeps each listener's frames in sequence order

	mu       sync.Mutex
	changed  chan struct{}
	sessions map[string]*session
	counts   map[string]int
	tokens   []string
	nextID   int
	nextConn int
}

type session struct {
	id, source, tier, format string
	packetMs                 int
	speakers                 []*conn
	listeners                []*conn
	seq                      uint32
	chunks                   [][]byte
	ended                    bool
}

type conn struct {
	id       string
	ws       *websocket.Conn
	wmu      sync.Mutex
	role     string
	lang     string
	base64   bool
	codec    string // what a listener asked for ("" for nothing)
	sess     *session
	retiring bool // closed by the server on purpose: not a drop
}

// NewServer starts a fake server; close it with Close.
func NewServer() *Server {
	s := &Server{
		RefreshOverlap: 2 * time.Second,
		changed:        make(chan struct{}),
		sessions:       map[string]*session{},
		counts:         map[string]int{},
		nextID:         427,
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveWS))
	s.URL = s.hs.URL
	return s
}

// Close shuts the server down, dropping every connection.
func (s *Server) Close() {
	s.hs.CloseClientConnections()
	s.hs.Close()
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		http.NotFound(w, r)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	q := r.URL.Query()
	token := q.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.mu.Lock()
	s.nextConn++
	c := &conn{id: fmt.Sprintf("conn-%d", s.nextConn), ws: ws}
	if token != "" {
		s.tokens = append(s.tokens, token)
	}
	s.mu.Unlock()

	if !s.admit(c, q, token) {
		return
	}
	s.readLoop(c)
}

// admit runs the connect-time part of docs/protocol.md, "Connecting to /ws".
func (s *Server) admit(c *conn, q map[string][]string, token string) bool {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	action, sid, lang := get("action"), get("sessionId"), get("targetLanguage")
	role := get("role")
	if action == "" && sid != "" && lang == "" && token != "" {
		role = "speaker"
	}
	if action == "" || action == "joinSession" {
		if role == "" {
			role = "listener"
		}
	}
	if (action == "createSession" || role == "speaker") && token == "" {
		return s.refuse(c, "UNAUTHORIZED", 401, "token required", nil)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixMilli()
	if action == "createSession" {
		src := get("sourceLanguage")
		if src == "" {
			return s.refuseLocked(c, "MISSING_PARAMETER", 400, "sourceLanguage is required", map[string]any{"field": "sourceLanguage"})
		}
		sess := &session{id: fmt.Sprintf("golden-eagle-%d", s.nextID), source: src, tier: or(get("qualityTier"), "standard"), format: or(get("audioFormat"), "pcm16"), packetMs: 60}
		if ms, err := strconv.Atoi(get("packetMs")); err == nil {
			sess.packetMs = ms
		}
		s.nextID++
		s.sessions[sess.id] = sess
		c.role, c.sess = "speaker", sess
		sess.speakers = append(sess.speakers, c)
		s.counts["create"]++
		s.touch()
		c.send(map[string]any{"type": "sessionCreated", "timestamp": now, "sessionId": sess.id, "sourceLanguage": src,
			"qualityTier": sess.tier, "audioFormat": sess.format, "packetMs": sess.packetMs, "sampleRate": 16000, "transcoding": false,
			"connectionId": c.id, "expiresAt": now + 86400000})
		return true
	}
	sess := s.sessions[sid]
	if sess == nil || sess.ended {
		return s.refuseLocked(c, "SESSION_NOT_FOUND", 404, "no such session", map[string]any{"sessionId": sid})
	}
	c.sess, c.role = sess, role
	if role == "listener" {
		if lang == "" {
			return s.refuseLocked(c, "MISSING_PARAMETER", 400, "targetLanguage is required", map[string]any{"field": "targetLanguage"})
		}
		c.lang, c.base64, c.codec = lang, get("audioEncoding") == "base64", get("codec")
	}
	switch {
	case action == "refreshConnection" && role == "speaker":
		s.counts["refresh-speaker"]++
		s.retireLater(sess.speakers)
		sess.speakers = append(sess.speakers, c)
	case action == "refreshConnection":
		s.counts["refresh-listener"]++
		for _, l := range sess.listeners {
			if l.id == get("previousConnectionId") {
				s.retireLater([]*conn{l})
			}
		}
		sess.listeners = append(sess.listeners, c)
	case role == "speaker":
		s.counts["attach"]++
		for _, old := range sess.speakers {
			old.retiring = true
			go func() {
				old.send(map[string]any{"type": "connectionReplaced", "timestamp": now, "sessionId": sess.id})
				old.closeWith(websocket.CloseNormalClosure, "")
			}()
		}
		sess.speakers = []*conn{c}
	default:
		s.counts["join"]++
		sess.listeners = append(sess.listeners, c)
	}
	s.touch()
	if action == "refreshConnection" {
		c.send(map[string]any{"type": "connectionRefreshComplete", "timestamp": now, "sessionId": sess.id, "role": role,
			"targetLanguage": c.lang, "sourceLanguage": sess.source, "connectionId": c.id, "codec": sess.format})
		return true
	}
	msg := map[string]any{"type": "sessionJoined", "timestamp": now, "sessionId": sess.id, "role": role,
		"sourceLanguage": sess.source, "connectionId": c.id, "listenerCount": len(sess.listeners),
		"audioFormat": sess.format, "codec": sess.format, "sampleRate": 16000, "packetMs": sess.packetMs, "transcoding": false,
		"speakerConnected": len(sess.speakers) > 0, "translated": false,
		"broadcastState": map[string]any{"isActive": true, "isPaused": false, "isMuted": false, "volume": 1.0, "lastStateChange": now}}
	if role == "listener" {
		msg["targetLanguage"] = lang
		msg["translated"] = lang == sess.source
	}
	c.send(msg)
	if role == "listener" {
		s.statusLocked(sess, "listenerCountChange")
	} else {
		for _, l := range sess.listeners {
			go l.send(map[string]any{"type": "speakerReconnected", "timestamp": now, "sessionId": sess.id})
		}
	}
	return true
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *Server) refuse(c *conn, code string, status int, msg string, details map[string]any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refuseLocked(c, code, status, msg, details)
}

// refuseLocked sends one error message and closes with 4000+status, as the
// real server does for errors found while connecting.
func (s *Server) refuseLocked(c *conn, code string, status int, msg string, details map[string]any) bool {
	s.counts["refused"]++
	s.touch()
	m := map[string]any{"type": "error", "timestamp": time.Now().UnixMilli(), "code": code, "status": status, "message": msg}
	if details != nil {
		m["details"] = details
	}
	c.send(m)
	c.closeWith(4000+status, code)
	return false
}

// retireLater closes connections replaced by a refresh after the overlap.
func (s *Server) retireLater(cs []*conn) {
	for _, old := range cs {
		old.retiring = true
		time.AfterFunc(s.RefreshOverlap, func() { old.closeWith(websocket.CloseNormalClosure, "") })
	}
}

func (s *Server) readLoop(c *conn) {
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			s.gone(c)
			return
		}
		if typ == websocket.BinaryMessage {
			if c.role == "speaker" {
				s.ingest(c.sess, b)
			}
			continue
		}
		var m struct {
			Action    string `json:"action"`
			AudioData string `json:"audioData"`
			Reason    string `json:"reason"`
		}
		if json.Unmarshal(b, &m) != nil {
			c.sendError("INVALID_MESSAGE", 400, "malformed JSON")
			continue
		}
		now := time.Now().UnixMilli()
		switch {
		case m.Action == "heartbeat":
			c.send(map[string]any{"type": "heartbeatAck", "timestamp": now})
		case m.Action == "refreshConnection":
			c.send(map[string]any{"type": "connectionRefreshComplete", "timestamp": now, "sessionId": c.sess.id, "role": c.role, "connectionId": c.id})
		case c.role != "speaker":
			c.sendError("UNAUTHORIZED_ACTION", 403, m.Action+" is not a listener action")
		case m.Action == "audioChunk" || m.Action == "sendAudio":
			chunk, err := base64.StdEncoding.DecodeString(m.AudioData)
			if err != nil || len(chunk) == 0 {
				c.sendError("INVALID_PARAMETER", 400, "audioData")
				continue
			}
			s.ingest(c.sess, chunk)
		case m.Action == "getSessionStatus":
			s.mu.Lock()
			s.statusLocked(c.sess, "requested")
			s.mu.Unlock()
		case m.Action == "endSession":
			s.End(c.sess.id, "speakerEnded")
		default:
			c.sendError("INVALID_ACTION", 400, "unknown action "+m.Action)
		}
	}
}

// gone forgets a connection that ended; a speaker's drop is announced.
func (s *Server) gone(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := c.sess
	if sess == nil {
		return
	}
	sess.speakers = without(sess.speakers, c)
	n := len(sess.listeners)
	sess.listeners = without(sess.listeners, c)
	s.touch()
	switch {
	case sess.ended || c.retiring:
	case c.role == "speaker" && len(sess.speakers) == 0:
		for _, l := range sess.listeners {
			go l.send(map[string]any{"type": "speakerDisconnected", "timestamp": time.Now().UnixMilli(), "sessionId": sess.id, "graceSeconds": 60})
		}
	case len(sess.listeners) != n:
		s.statusLocked(sess, "listenerCountChange")
	}
}

func without(cs []*conn, c *conn) []*conn {
	out := cs[:0:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// statusLocked pushes sessionStatus to the speakers.
func (s *Server) statusLocked(sess *session, reason string) {
	dist := map[string]int{}
	for _, l := range sess.listeners {
		dist[l.lang]++
	}
	m := map[string]any{"type": "sessionStatus", "timestamp": time.Now().UnixMilli(), "sessionId": sess.id,
		"listenerCount": len(sess.listeners), "languageDistribution": dist, "sessionDuration": 0, "updateReason": reason}
	for _, sp := range sess.speakers {
		go sp.send(m)
	}
}

// ingest numbers a chunk and fans it out to the listeners.
func (s *Server) ingest(sess *session, chunk []byte) {
	s.fanMu.Lock()
	defer s.fanMu.Unlock()
	s.mu.Lock()
	if sess.ended {
		s.mu.Unlock()
		return
	}
	seq := sess.seq
	sess.seq++
	sess.chunks = append(sess.chunks, append([]byte(nil), chunk...))
	listeners := append([]*conn(nil), sess.listeners...)
	s.touch()
	s.mu.Unlock()

	now := time.Now()
	frame := make([]byte, 16, 16+len(chunk))
	frame[0] = 1
	binary.BigEndian.PutUint32(frame[4:8], seq)
	binary.BigEndian.PutUint64(frame[8:16], uint64(now.UnixMicro()))
	frame = append(frame, chunk...)
	for _, l := range listeners {
		if l.base64 {
			l.send(map[string]any{"type": "audioData", "timestamp": now.UnixMilli(), "sessionId": sess.id, "targetLanguage": l.lang,
				"sequenceNumber": seq, "kind": 0, "audioData": base64.StdEncoding.EncodeToString(chunk), "format": sess.format})
		} else {
			l.write(websocket.BinaryMessage, frame)
		}
	}
}

func (c *conn) send(m map[string]any) {
	b, _ := json.Marshal(m)
	c.write(websocket.TextMessage, b)
}

func (c *conn) sendError(code string, status int, msg string) {
	c.send(map[string]any{"type": "error", "timestamp": time.Now().UnixMilli(), "code": code, "status": status, "message": msg})
}

func (c *conn) write(typ int, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = c.ws.WriteMessage(typ, b)
}

// closeWith sends a close frame and drops the connection shortly after,
// whether or not the client answers.
func (c *conn) closeWith(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	time.AfterFunc(time.Second, func() { c.ws.Close() })
}

// touch wakes WaitFor; s.mu must be held.
func (s *Server) touch() {
	close(s.changed)
	s.changed = make(chan struct{})
}
