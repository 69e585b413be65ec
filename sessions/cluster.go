package sessions

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
)

// Cluster is what a node shares with the other nodes of a cluster: listener
// presence counted per node, and a bus for a session's live events. It is
// nil on a single node, where the room's own counts and direct calls do.
type Cluster interface {
	// Node is this node's ID: 8 bytes, hex-encoded.
	Node() string
	Join(ctx context.Context, sid, lang string, max int, allowOver bool) (total int, newLang, full bool, err error)
	Leave(ctx context.Context, sid, lang string) error
	Counts(ctx context.Context, sid string) (int, map[string]int, error)
	Alive(ctx context.Context, node string) (bool, error)

	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error
	Publish(ctx context.Context, topic string, msg []byte) error
	// PublishSequenced numbers msg from the topic's shared counter (at
	// least floor), writing the number big-endian at byte seqAt, publishes
	// it and returns the number.
	PublishSequenced(ctx context.Context, topic string, msg []byte, seqAt int, floor uint32) (uint32, error)
}

// Event types on the bus. Every event is [type][origin node: 8 bytes][body].
const (
	evAudio    = 'A' // body: 16-byte audio header + chunk, on the audio topic
	evListener = 'C' // body: a server message for every listener
	evState    = 'S' // body: stateEvent
	evEnded    = 'E' // body: endEvent
	evSpeaker  = 'R' // body: speakerEvent: the speaker attached on the origin node
	evDetails  = 'L' // body: detailsEvent
	evPresence = 'P' // body: presenceEvent: listeners came or went
)

const originLen = 8

// audioSeqAt is where the sequence number sits in an audio event: after
// the type, the origin and 4 bytes of the audio header.
const audioSeqAt = 1 + originLen + 4

type stateEvent struct {
	Broadcast pentecost.BroadcastState `json:"broadcast"`
	Status    pentecost.Status         `json:"status"`
	Message   json.RawMessage          `json:"message"`
}

type endEvent struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type speakerEvent struct {
	Refresh bool `json:"refresh"`
}

type presenceEvent struct {
	NewLang bool `json:"newLang,omitempty"`
}

type detailsEvent struct {
	SourceLanguage string `json:"sourceLanguage"`
}

func controlTopic(sid string) string { return sid }
func audioTopic(sid string) string   { return sid + ":audio" }

func (s *Service) event(typ byte, body []byte) []byte {
	b := make([]byte, 0, 1+originLen+len(body))
	b = append(b, typ)
	b = append(b, s.origin[:]...)
	return append(b, body...)
}

// emit publishes an event about session sid to the other nodes. A failure
// is logged: the local half of the event has happened, and the nodes that
// missed it converge through the store (status, ends) or their own timers.
func (s *Service) emit(sid string, typ byte, v any) {
	if s.cluster == nil {
		return
	}
	var body []byte
	switch x := v.(type) {
	case []byte:
		body = x
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			s.log.Error("encode cluster event", "err", err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cluster.Publish(ctx, controlTopic(sid), s.event(typ, body)); err != nil {
		s.log.Warn("cluster event not published", "sessionId", sid, "event", string(typ), "err", err)
	}
}

// Deliver handles a message from the bus. The node's own messages come back
// too and are skipped.
func (s *Service) Deliver(topic string, msg []byte) {
	sid, _, _ := strings.Cut(topic, ":")
	if len(msg) < 1+originLen || string(msg[1:1+originLen]) == string(s.origin[:]) {
		return
	}
	l := s.lookupLive(sid)
	if l == nil {
		return
	}
	body := msg[1+originLen:]
	switch msg[0] {
	case evAudio:
		h, chunk, err := protocol.ParseAudioFrame(body)
		if err != nil {
			return
		}
		l.room.Deliver(*l.sourceLang.Load(), h.Sequence, h.Ingest, chunk)
	case evListener:
		l.room.Broadcast(hub.NewControl(append([]byte(nil), body...)))
	case evState:
		var ev stateEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.mu.Lock()
		l.rec.Broadcast, l.rec.Status = ev.Broadcast, ev.Status
		l.gated.Store(ev.Broadcast.IsPaused || ev.Broadcast.IsMuted)
		m := hub.NewControl(ev.Message)
		for _, sp := range l.speakers {
			sp.conn.Queue().Push(m)
		}
		l.room.Broadcast(m)
		l.mu.Unlock()
	case evEnded:
		var ev endEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		if l.finish(ev.Reason, ev.Message) {
			s.obs.SessionEnded(ev.Reason)
		}
		s.dropLive(l)
	case evSpeaker:
		var ev speakerEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.speakerMoved(ev.Refresh)
	case evPresence:
		var ev presenceEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.listenersChanged(ev.NewLang)
	case evDetails:
		var ev detailsEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.mu.Lock()
		l.rec.SourceLanguage = ev.SourceLanguage
		l.sourceLang.Store(&ev.SourceLanguage)
		l.notifySourceLocked(ev.SourceLanguage)
		l.mu.Unlock()
	}
}

// speakerMoved runs when the speaker attached on another node: this node's
// speaker connections are replaced (or, for a refresh, closed after the
// overlap), and its grace timer is moot.
func (l *live) speakerMoved(refresh bool) {
	l.mu.Lock()
	if l.graceTimer != nil {
		l.graceTimer.Stop()
		l.graceTimer = nil
	}
	var replaced []*Speaker
	for cid, sp := range l.speakers {
		if refresh {
			l.s.closeAfterOverlap(sp)
			continue
		}
		sp.active.Store(false)
		delete(l.speakers, cid)
		replaced = append(replaced, sp)
	}
	// The newest speaker is on another node now: ending ours is no
	// longer a speaker drop.
	l.primary = nil
	l.mu.Unlock()
	now := l.s.clock.Now()
	for _, sp := range replaced {
		send(sp.conn, &protocol.ConnectionReplaced{Header: protocol.H(protocol.TypeConnectionReplaced, now), SessionID: l.id})
		sp.conn.Close(1000, "connectionReplaced")
	}
}

// toListeners sends m to this session's listeners on every node.
func (l *live) toListenersLocked(m protocol.Message) {
	b := protocol.Marshal(m)
	l.room.Broadcast(hub.NewControl(b))
	l.s.emit(l.id, evListener, b)
}

// subscribe starts receiving a session's control events (any local
// interest) or audio (local listeners).
func (s *Service) subscribe(topic string) {
	if s.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cluster.Subscribe(ctx, topic); err != nil {
		s.log.Warn("cluster subscribe failed", "topic", topic, "err", err)
	}
}

func (s *Service) unsubscribe(topic string) {
	if s.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cluster.Unsubscribe(ctx, topic); err != nil {
		s.log.Warn("cluster unsubscribe failed", "topic", topic, "err", err)
	}
}

// LocalPresence reports this node's listeners per session and language, for
// the cluster's periodic re-assertion of counts.
func (s *Service) LocalPresence() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, l := range s.lives() {
		_, by := l.room.Distribution()
		out[l.id] = by
	}
	return out
}
