package processor

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// PCMOnly adapts t, which works on pcm16 only (a synthesizer, a speech
// engine), to streams whose audio is Opus: each packet is decoded into
// pcm16 before t's Worker sees it (its Stream says "pcm16"), and the pcm16
// it publishes is encoded into packets of the session's packet duration. A
// pcm16 stream goes to t unchanged. In a build without Opus, starting an
// Opus stream fails with an error wrapping opus.ErrUnavailable.
//
// The server converts on its own when it can (a processor that attaches
// with the default codec receives pcm16); this is for the sessions it
// cannot convert, on a server built without Opus.
func PCMOnly(t Translator) Translator {
	return TranslatorFunc(func(ctx context.Context, s Stream, out Output) (Worker, error) {
		if s.Format != protocol.CodecOpus {
			return t.Start(ctx, s, out)
		}
		return startOnPCM(ctx, s, out, t.Start)
	})
}

func startOnPCM(ctx context.Context, s Stream, out Output, start func(context.Context, Stream, Output) (Worker, error)) (Worker, error) {
	dec, err := client.NewDecoder(protocol.CodecOpus)
	if err != nil {
		return nil, fmt.Errorf("the session's audio is Opus: %w", err)
	}
	enc := &opusOutput{Output: out, packetMs: s.PacketMs}
	ps := s
	ps.Format = protocol.CodecPCM16
	inner, err := start(ctx, ps, enc)
	if err != nil {
		return nil, err
	}
	w := &opusWorker{inner: inner, dec: dec, out: enc}
	if x, ok := inner.(Exiter); ok {
		return &opusExiter{w, x}, nil
	}
	return w, nil
}

// opusWorker decodes each packet for its inner Worker.
type opusWorker struct {
	inner  Worker
	dec    *client.Decoder
	out    *opusOutput
	failed int // packets that could not be decoded
}

func (w *opusWorker) Process(c Chunk) error {
	w.out.learn(c.Data)
	b, err := w.dec.Decode(nil, c.Data) // a fresh slice: the worker may keep it
	if err != nil {
		// One bad packet is a gap, not the end of the stream.
		if w.failed++; w.failed == 1 || w.failed%100 == 0 {
			w.out.Logf("skipping an Opus packet it cannot decode (%d so far): %v", w.failed, err)
		}
		return nil
	}
	return w.inner.Process(Chunk{Data: b, Sequence: c.Sequence, Ingest: c.Ingest})
}

func (w *opusWorker) Close() error { return w.inner.Close() }

// opusExiter is an opusWorker whose inner Worker can die on its own.
type opusExiter struct {
	*opusWorker
	x Exiter
}

func (w *opusExiter) Done() <-chan struct{} { return w.x.Done() }

// opusOutput encodes the pcm16 its Worker publishes into Opus packets.
type opusOutput struct {
	Output
	mu       sync.Mutex
	packetMs int // the session's; else learned from the source packets
	enc      *opus.Encoder
	pcm      []int16
}

// learn takes the source's packet duration when the session did not say.
// The packet is parsed only until then: the decoder parses it again anyway.
func (o *opusOutput) learn(packet []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.packetMs != 0 {
		return
	}
	if p, err := opus.ParsePacket(packet); err == nil {
		if ms := int(p.Duration().Milliseconds()); slices.Contains(protocol.PacketDurations, ms) {
			o.packetMs = ms
		}
	}
}

// Audio implements Output: pcm16 in, packets out. A partial packet waits for
// the next call.
func (o *opusOutput) Audio(chunk []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.enc == nil {
		enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: o.packetMs})
		if err != nil {
			o.Logf("cannot encode Opus: %v", err)
			return
		}
		o.enc = enc
	}
	o.pcm = wav.AppendSamples(o.pcm[:0], chunk)
	err := o.enc.Push(o.pcm, func(p []byte) error {
		o.Output.Audio(append([]byte(nil), p...))
		return nil
	})
	if err != nil {
		o.Logf("cannot encode Opus: %v", err)
	}
}
