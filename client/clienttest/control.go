package clienttest

import (
	"context"
	"time"

	"github.com/gorilla/websocket"
)

// WaitFor returns once cond holds, re-checking it whenever the server's
// state changes, or ctx's error. cond may call the Server's methods.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CreateSession makes a pcm16 session as the HTTP API would, for attach
// tests.
func (s *Server) CreateSession(id, sourceLanguage string) {
	s.CreateSessionFormat(id, sourceLanguage, "pcm16", 60)
}

// CreateSessionFormat makes a session whose speaker sends format in packets
// of packetMs. Like a server built without Opus, the fake never converts:
// every listener gets the session's format, and sessionJoined's codec says
// so.
func (s *Server) CreateSessionFormat(id, sourceLanguage, format string, packetMs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[id] = &session{id: id, source: sourceLanguage, tier: "standard", format: format, packetMs: packetMs}
	s.touch()
}

// Format returns a session's audioFormat and packetMs, as created.
func (s *Server) Format(id string) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[id]; sess != nil {
		return sess.format, sess.packetMs
	}
	return "", 0
}

// ListenerCodecs returns the codec each listener connection of a session
// asked for, in join order ("" when it asked for none).
func (s *Server) ListenerCodecs(id string) []string {
	var out []string
	for _, c := range s.conns(id, "listener") {
		out = append(out, c.codec)
	}
	return out
}

// Count returns how many connections of a kind were made: "create",
// "attach", "join", "refresh-speaker", "refresh-listener", "refused".
func (s *Server) Count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

// Tokens returns the tokens connections presented, in order.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// Chunks returns the audio chunks the session received, in order.
func (s *Server) Chunks(id string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[id]; sess != nil {
		return append([][]byte(nil), sess.chunks...)
	}
	return nil
}

// Listeners and Speakers count the session's live connections of a role.
func (s *Server) Listeners(id string) int { return s.count(id, "listener") }
func (s *Server) Speakers(id string) int  { return s.count(id, "speaker") }

func (s *Server) count(id, role string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess == nil {
		return 0
	}
	if role == "speaker" {
		return len(sess.speakers)
	}
	return len(sess.listeners)
}

// Ended reports whether the session has ended.
func (s *Server) Ended(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	return sess != nil && sess.ended
}

func (s *Server) conns(id, role string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess == nil {
		return nil
	}
	if role == "speaker" {
		return append([]*conn(nil), sess.speakers...)
	}
	return append([]*conn(nil), sess.listeners...)
}

// RequireRefresh sends connectionRefreshRequired to the session's
// connections of role and returns how many got it.
func (s *Server) RequireRefresh(id, role string) int {
	cs := s.conns(id, role)
	now := time.Now()
	for _, c := range cs {
		c.send(map[string]any{"type": "connectionRefreshRequired", "timestamp": now.UnixMilli(), "sessionId": id,
			"role": role, "targetLanguage": c.lang, "connectionId": c.id, "reason": "maxDuration",
			"refreshBy": now.Add(20 * time.Minute).UnixMilli()})
	}
	return len(cs)
}

// Drop cuts the TCP connections of the session's role without a close
// frame, as a network failure would.
func (s *Server) Drop(id, role string) {
	for _, c := range s.conns(id, role) {
		c.ws.Close()
	}
}

// Inject fans a chunk out as if the speaker had sent it.
func (s *Server) Inject(id string, chunk []byte) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess != nil {
		s.ingest(sess, chunk)
	}
}

// SkipSeq makes the next n sequence numbers go unused, as chunks lost
// before the fan-out would.
func (s *Server) SkipSeq(id string, n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[id]; sess != nil {
		sess.seq += n
	}
}

// Broadcast sends a JSON message to every connection of the session.
func (s *Server) Broadcast(id string, msg map[string]any) {
	for _, c := range append(s.conns(id, "speaker"), s.conns(id, "listener")...) {
		c.send(msg)
	}
}

// End ends the session: sessionEnded to everyone, then close with 1000.
func (s *Server) End(id, reason string) {
	s.mu.Lock()
	sess := s.sessions[id]
	if sess == nil || sess.ended {
		s.mu.Unlock()
		return
	}
	sess.ended = true
	cs := append(append([]*conn(nil), sess.speakers...), sess.listeners...)
	s.touch()
	s.mu.Unlock()
	msg := map[string]any{"type": "sessionEnded", "timestamp": time.Now().UnixMilli(), "sessionId": id, "reason": reason, "message": ""}
	for _, c := range cs {
		c.send(msg)
		c.closeWith(websocket.CloseNormalClosure, "")
	}
}
