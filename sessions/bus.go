package sessions

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
)

// Bus carries a session's audio and events between the nodes that hold its
// connections. A single node uses an in-memory bus (internal/inmem), a
// cluster one on Redis (internal/redis); both pass internal/bustest.
type Bus interface {
	// Subscribe calls fn with every message sent on topic from now on, by
	// any node, this one included, until the subscription is cancelled.
	// Messages of one sender arrive in the order sent. fn runs on the bus's
	// own goroutine and must not block.
	Subscribe(ctx context.Context, topic string, fn func(msg []byte)) (Subscription, error)
	// Send sends msgs in order, in one round trip where the bus allows.
	Send(ctx context.Context, msgs []Envelope) error
	// NextSeq is the number the next audio chunk of topic must at least
	// carry: one past the highest Seq sent on it (serial arithmetic), 0 if
	// none was.
	NextSeq(ctx context.Context, topic string) (uint32, error)
	// Ping reports whether the bus can carry messages now.
	Ping(ctx context.Context) error
}

// Subscription is one Subscribe's hold on a topic.
type Subscription interface {
	// Cancel stops the deliveries to this subscription's fn. Other
	// subscriptions to the same topic are not affected.
	Cancel(ctx context.Context) error
}

// Envelope is one message for the bus.
type Envelope struct {
	Topic string
	Msg   []byte
	// Numbered marks an audio chunk numbered Seq: the bus remembers the
	// highest number sent on the topic (NextSeq), so whichever node numbers
	// the session's audio next continues above it.
	Numbered bool
	Seq      uint32
	// SeqTopic, when set, is the counter a Numbered message raises in place
	// of Topic's: packets converted on the speaker's node travel on the
	// audio topic but are numbered apart (codec.go).
	SeqTopic string
}

// Counter is the topic whose counter a Numbered e raises.
func (e Envelope) Counter() string {
	if e.SeqTopic != "" {
		return e.SeqTopic
	}
	return e.Topic
}

// Event types on the bus. Every message is [type][origin node: 8 bytes][body].
const (
	evAudio    = 'A' // body: 16-byte audio header + chunk, on the audio topic
	evListener = 'C' // body: a server message for every listener
	evState    = 'S' // body: stateEvent
	evEnded    = 'E' // body: endEvent
	evSpeaker  = 'R' // body: speakerEvent: the speaker attached on the origin node
	evDetails  = 'L' // body: detailsEvent
	evPresence = 'P' // body: presenceEvent: listeners came or went
	// evConverted, on the audio topic: 16-byte audio header + an Opus packet
	// encoded from a pcm16 source on the speaker's node (codec.go).
	evConverted = 'O'
)

const originLen = 8

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
	Refresh bool   `json:"refresh"`
	Epoch   uint64 `json:"epoch,omitempty"` // the record's SpeakerEpoch after the attach
}

type presenceEvent struct {
	NewLang bool `json:"newLang,omitempty"`
}

type detailsEvent struct {
	SourceLanguage string `json:"sourceLanguage"`
}

// A session has two topics: its control events, which every node holding
// any of its connections follows, and its audio, which a node follows while
// it has listeners or the speaker there.
func controlTopic(sid string) string { return sid }
func audioTopic(sid string) string   { return sid + ":audio" }

// message frames a bus message: type, this node's origin, body.
func (s *Service) message(typ byte, body []byte) []byte {
	b := make([]byte, 0, 1+originLen+len(body))
	b = append(b, typ)
	b = append(b, s.origin[:]...)
	return append(b, body...)
}

// emit sends an event about session sid to the other nodes, through the
// forwarder: it never waits. An event the bus cannot carry is counted and
// dropped: the local half of the event has happened, and the nodes that
// missed it converge through the store (status, ends) or their own timers.
func (s *Service) emit(sid string, typ byte, v any) {
	body, ok := v.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(v); err != nil {
			s.log.Error("encode bus event", "err", err)
			return
		}
	}
	s.fwd.push(Envelope{Topic: controlTopic(sid), Msg: s.message(typ, body)})
}

// forwardAudio hands a chunk this node numbered to the forwarder, for the
// nodes with listeners of the session. It never waits; the chunk is copied,
// so the caller may reuse it.
func (l *liveSession) forwardAudio(seq uint32, ingest time.Time, chunk []byte) {
	l.s.fwd.push(Envelope{Topic: audioTopic(l.id), Msg: l.s.audioMessage(evAudio, seq, ingest, chunk), Numbered: true, Seq: seq})
}

// audioMessage frames a numbered chunk of source audio (typ evAudio, or
// evConverted for a packet encoded from it) as a bus message, copying it.
func (s *Service) audioMessage(typ byte, seq uint32, ingest time.Time, chunk []byte) []byte {
	msg := make([]byte, 1+originLen+protocol.AudioHeaderSize+len(chunk))
	msg[0] = typ
	copy(msg[1:], s.origin[:])
	protocol.PutAudioHeader(msg[1+originLen:], protocol.KindSource, 0, seq, ingest)
	copy(msg[1+originLen+protocol.AudioHeaderSize:], chunk)
	return msg
}

// receive handles a message of one of the session's topics. The node's own
// messages come back too and are skipped.
func (l *liveSession) receive(msg []byte) {
	s := l.s
	if len(msg) < 1+originLen || string(msg[1:1+originLen]) == string(s.origin[:]) {
		return
	}
	body := msg[1+originLen:]
	switch msg[0] {
	case evAudio:
		h, chunk, err := protocol.ParseAudioFrame(body)
		if err != nil {
			return
		}
		l.noteBusSeq(h.Sequence)
		src := *l.sourceLang.Load()
		l.room.Deliver(src, h.Sequence, h.Ingest, chunk)
		l.convertSource(src, h.Sequence, h.Ingest, chunk, false)
	case evConverted:
		h, packet, err := protocol.ParseAudioFrame(body)
		if err != nil {
			return
		}
		// Numbering continues here above it if the speaker comes here.
		l.room.RaiseSeq(hub.ConvertedStream(protocol.CodecOpus, ""), h.Sequence+1)
		l.room.DeliverConverted(*l.sourceLang.Load(), protocol.CodecOpus, h.Sequence, h.Ingest, packet)
	case evListener:
		l.room.Broadcast(hub.NewControl(append([]byte(nil), body...)))
	case evState:
		var ev stateEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.mu.Lock()
		rec := l.rec.Clone()
		rec.Broadcast, rec.Status = ev.Broadcast, ev.Status
		l.setRecordLocked(rec)
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
		s.drop(l)
	case evSpeaker:
		var ev speakerEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		l.speakerMoved(hex.EncodeToString(msg[1:1+originLen]), ev)
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
		rec := l.rec.Clone()
		rec.SourceLanguage = ev.SourceLanguage
		l.setRecordLocked(rec)
		l.sourceLang.Store(&ev.SourceLanguage)
		l.announceLocked() // this node's processors learn the new source
		l.mu.Unlock()
		l.sourceChanged()
	}
}

// maxBusGap is the largest jump in the bus's audio numbers counted as
// missing chunks; a larger one is a new numbering (a restarted node with
// nothing saved), not a loss.
const maxBusGap = 30000

// noteBusSeq counts the chunks missing before seq on the bus: audio the
// speaker's node dropped or that Redis lost, so no loss goes unseen.
func (l *liveSession) noteBusSeq(seq uint32) {
	const seen = 1 << 32
	for {
		prev := l.busNext.Load()
		gap := seq - uint32(prev) // serial distance forward from the expected number
		if prev&seen != 0 && gap > 1<<31 {
			return // late, or a duplicate: the number is behind
		}
		if !l.busNext.CompareAndSwap(prev, uint64(seq+1)|seen) {
			continue
		}
		if prev&seen != 0 && gap > 0 && gap <= maxBusGap {
			l.s.obs.BusAudioMissing(int(gap))
			if l.busGaps.Add(1)%100 == 1 {
				l.s.log.Warn("audio chunks from the speaker's node never arrived", "sessionId", l.id, "missing", gap)
			}
		}
		return
	}
}

// speakerMoved runs when the speaker attached on node: this node's speaker
// connections are replaced (or, for a refresh, closed after the overlap),
// its grace timer is moot, and node holds the session now. News older than
// what this node knows (an attach here came after it) is ignored.
func (l *liveSession) speakerMoved(node string, ev speakerEvent) {
	refresh := ev.Refresh
	l.mu.Lock()
	if ev.Epoch != 0 && ev.Epoch < l.rec.SpeakerEpoch {
		l.mu.Unlock()
		return
	}
	rec := l.rec.Clone()
	rec.SpeakerNode, rec.SpeakerLive, rec.GraceUntil = node, true, time.Time{}
	rec.SpeakerEpoch = max(rec.SpeakerEpoch, ev.Epoch)
	l.setRecordLocked(rec)
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
	l.updateAudioSubscription()
}

// toListenersLocked sends m to this session's listeners on every node.
func (l *liveSession) toListenersLocked(m protocol.Message) {
	b := protocol.Marshal(m)
	l.room.Broadcast(hub.NewControl(b))
	l.s.emit(l.id, evListener, b)
}
