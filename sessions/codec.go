package sessions

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/protocol"
)

// The conversions of docs/protocol.md 7.4: each stream of a session (the
// source, or one language's translation) arrives in one codec, and whoever
// wants the other gets it converted here once, however many listeners (and
// processors) receive it: the converted chunk is fanned out like any other.
//
// Decoding Opus into pcm16 is one chunk per packet and keeps the packet's
// sequence number, so every node decodes for its own listeners from the
// packets it already receives. Encoding pcm16 into Opus re-cuts the audio
// into packets of the session's duration, numbered by a counter of their own;
// the node that ingests the stream encodes, and in a cluster sends the
// packets with their numbers over the bus (evConverted), so listeners on
// every node see the same numbers.

// transcodes reports whether this node converts between pcm16 and Opus.
func (s *Service) transcodes() bool { return s.cfg.Transcode && opus.Available }

// Transcodes reports whether this node converts between pcm16 and Opus:
// the "transcoding" clients are told.
func (s *Service) Transcodes() bool { return s.transcodes() }

// codecFor is the codec a client that asked for want gets in session l: want
// when this node converts, else the session's own format (docs/protocol.md
// 7.4, builds without Opus).
func (l *liveSession) codecFor(want string) string {
	if want == "" {
		want = protocol.CodecPCM16
	}
	if !l.s.transcodes() {
		return l.format
	}
	return want
}

// checkChunk refuses, in a stream whose codec is Opus, a chunk that is not
// a well-formed Opus packet, so no listener's decoder is ever fed one.
func checkChunk(codec string, chunk []byte) error {
	if codec != protocol.CodecOpus {
		return nil
	}
	if _, err := opus.ParsePacket(chunk); err != nil {
		return pentecost.Invalid("audioData", "chunk is not an Opus packet: "+err.Error())
	}
	return nil
}

// converter converts one stream out of the codec it arrives in. It is safe
// for concurrent use: a speaker's refresh overlap feeds it from two
// connections.
type converter struct {
	s        *Service
	sid      string
	packetMs int

	mu  sync.Mutex
	dec *opus.Decoder
	enc *opus.Encoder
	pcm []int16 // decoded samples, or samples waiting for a whole packet
	// first is the ingest time of pcm's first waiting sample: a packet's
	// ingest time is that of the oldest audio in it.
	first time.Time
	pkt   []byte
	fails uint64
}

// converted is one chunk a converter made.
type converted struct {
	chunk  []byte
	ingest time.Time
}

// decode turns one Opus packet into a pcm16 chunk; nil when it cannot.
func (c *converter) decode(packet []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dec == nil {
		dec, err := opus.NewDecoder()
		if err != nil {
			c.fail("Opus decoder unavailable", err)
			return nil
		}
		c.dec = dec
	}
	var err error
	if c.pcm, err = c.dec.Decode(c.pcm[:0], packet); err != nil {
		c.fail("Opus packet not decoded", err)
		return nil
	}
	c.s.obs.Transcoded("decode", 1)
	return pcmBytes(c.pcm)
}

// encode takes a pcm16 chunk and returns the Opus packets it completes.
func (c *converter) encode(chunk []byte, ingest time.Time) []converted {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enc == nil {
		enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: c.packetMs})
		if err != nil {
			c.fail("Opus encoder unavailable", err)
			return nil
		}
		c.enc, c.pcm = enc, c.pcm[:0]
	}
	if len(c.pcm) == 0 {
		c.first = ingest
	}
	frame := c.enc.FrameSamples()
	var out []converted
	for i := 0; i+1 < len(chunk); i += 2 {
		c.pcm = append(c.pcm, int16(binary.LittleEndian.Uint16(chunk[i:])))
		if len(c.pcm) < frame {
			continue
		}
		pkt, err := c.enc.Encode(c.pkt[:0], c.pcm)
		c.pcm = c.pcm[:0]
		at := c.first
		c.first = ingest // the next packet starts within this chunk
		if err != nil {
			c.fail("Opus packet not encoded", err)
			continue
		}
		c.pkt = pkt
		c.s.obs.Transcoded("encode", 1)
		out = append(out, converted{chunk: append([]byte(nil), pkt...), ingest: at})
	}
	return out
}

// idle drops the encoder while nobody wants the stream converted; the
// numbering lives in the room and continues when someone does again.
func (c *converter) idle() {
	c.mu.Lock()
	c.enc, c.pcm = nil, c.pcm[:0]
	c.mu.Unlock()
}

func (c *converter) fail(what string, err error) {
	if c.fails++; c.fails == 1 || c.fails%500 == 0 {
		c.s.log.Warn(what, "sessionId", c.sid, "count", c.fails, "err", err)
	}
}

func pcmBytes(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// otherCodec is the codec a stream in c is converted into.
func otherCodec(c string) string {
	if c == protocol.CodecOpus {
		return protocol.CodecPCM16
	}
	return protocol.CodecOpus
}

// convKey names a converted stream: its language ("" for the source) and
// the codec it arrives in.
type convKey struct{ lang, from string }

// converterFor returns the converter of stream lang ("" for the source)
// arriving in codec from.
func (l *liveSession) converterFor(lang, from string) *converter {
	l.convMu.Lock()
	defer l.convMu.Unlock()
	key := convKey{lang, from}
	c := l.conv[key]
	if c == nil {
		c = &converter{s: l.s, sid: l.id, packetMs: l.packetMs}
		l.conv[key] = c
	}
	return c
}

// convertSource converts a source chunk for the listeners and processors of
// the other codec. ingest is true on the node the speaker sends to: only
// there is pcm16 encoded (its packets go to the other nodes); Opus is
// decoded wherever it is wanted.
func (l *liveSession) convertSource(src string, seq uint32, at time.Time, chunk []byte, ingest bool) {
	if !l.s.transcodes() {
		return
	}
	// The cheap checks first: on most nodes, for most chunks, nothing is
	// converted.
	to := otherCodec(l.format)
	if to == protocol.CodecPCM16 {
		if l.room.WantsSource(src, to) {
			if pcm := l.converterFor("", l.format).decode(chunk); pcm != nil {
				l.room.DeliverConverted(src, to, seq, at, pcm)
			}
		}
		return
	}
	if !ingest {
		return
	}
	c := l.converterFor("", l.format)
	if !l.room.WantsSource(src, to) && !l.remoteListeners.Load() {
		c.idle()
		return
	}
	for _, p := range c.encode(chunk, at) {
		oseq := l.room.TakeSeq(hub.ConvertedStream(to, ""))
		l.room.DeliverConverted(src, to, oseq, p.ingest, p.chunk)
		l.forwardConverted(oseq, p.ingest, p.chunk)
	}
}

// convertTranslated converts a processor's chunk of lang, in codec from, for
// the listeners of lang who take the other codec. Processors are node-local,
// so are their translations and these conversions.
func (l *liveSession) convertTranslated(lang, from string, seq uint32, at time.Time, chunk []byte) {
	if !l.s.transcodes() {
		return
	}
	to := otherCodec(from)
	c := l.converterFor(lang, from)
	if !l.room.WantsTranslated(lang, to) {
		if to == protocol.CodecOpus {
			c.idle()
		}
		return
	}
	if to == protocol.CodecPCM16 {
		if pcm := c.decode(chunk); pcm != nil {
			l.room.DeliverTranslated(lang, to, seq, at, pcm)
		}
		return
	}
	for _, p := range c.encode(chunk, at) {
		l.room.DeliverTranslated(lang, to, l.room.TakeSeq(hub.ConvertedStream(to, lang)), p.ingest, p.chunk)
	}
}

// convertedTopic numbers the packets encoded from a pcm16 session's source
// on the bus, as audioTopic numbers the source chunks.
func convertedTopic(sid string) string { return sid + ":audio:opus" }

// forwardConverted hands an encoded packet, with its number, to the
// forwarder (it never waits), for the nodes with listeners of the session.
// They receive it on the audio topic; its number raises the converted
// topic's counter, for whichever node encodes next (a node that received
// the packets has raised its own counter from them already: receive).
func (l *liveSession) forwardConverted(seq uint32, ingest time.Time, packet []byte) {
	s := l.s
	s.fwd.push(Envelope{
		Topic: audioTopic(l.id), Msg: s.audioMessage(evConverted, seq, ingest, packet),
		Numbered: true, Seq: seq, SeqTopic: convertedTopic(l.id),
	})
}
