package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/pentecost/pentecost/protocol"
)

// The hot path's regression guard: a change that adds an allocation per
// frame per listener shows up here as allocs/op growing with the listener
// count. Publish must stay at a constant number of allocations per chunk
// (the stamped frame and its Message), whatever the fan-out.

func benchRoom(b *testing.B, listeners, langs int, base64 bool) (*Room, []*Queue) {
	b.Helper()
	r := NewRoom(RoomOptions{SessionID: "golden-eagle-427", Format: "pcm16"})
	qs := make([]*Queue, listeners)
	lang := []string{"en", "es", "fr", "de", "pt"}
	for i := range qs {
		qs[i] = NewQueue(QueueOptions{MaxAudio: 1 << 20})
		l := &Listener{ID: fmt.Sprint(i), Lang: lang[i%langs], Base64: base64 && i%2 == 1, Queue: qs[i]}
		if _, err := r.Join(l, 0, false); err != nil {
			b.Fatal(err)
		}
	}
	return r, qs
}

// BenchmarkRoomPublish stamps, frames once and enqueues a 640-byte chunk to
// every listener; the writers' Take runs every 64 chunks, inside the timing,
// as it would in a server whose writers keep up.
func BenchmarkRoomPublish(b *testing.B) {
	for _, bc := range []struct {
		listeners, langs int
		base64           bool
	}{{1, 1, false}, {100, 1, false}, {500, 1, false}, {500, 3, false}, {2000, 1, false}, {500, 3, true}} {
		name := fmt.Sprintf("listeners=%d/langs=%d", bc.listeners, bc.langs)
		if bc.base64 {
			name += "/half-base64"
		}
		b.Run(name, func(b *testing.B) {
			r, qs := benchRoom(b, bc.listeners, bc.langs, bc.base64)
			chunk := make([]byte, 640)
			var batch []*Message
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Publish("en", chunk, now)
				if i%64 == 63 {
					for _, q := range qs {
						batch = q.Take(batch)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.listeners), "ns/delivery")
		})
	}
}

// BenchmarkQueuePushTake is one listener keeping up: every frame is pushed,
// then taken by the writer on its own.
func BenchmarkQueuePushTake(b *testing.B) {
	q := NewQueue(QueueOptions{})
	m := NewAudio(true, make([]byte, 656))
	var batch []*Message
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Push(m)
		batch = q.Take(batch)
	}
}

// BenchmarkQueuePushBatch is a listener behind by a batch: 16 frames wait
// and one Take (one writev) carries them all.
func BenchmarkQueuePushBatch16(b *testing.B) {
	q := NewQueue(QueueOptions{})
	m := NewAudio(true, make([]byte, 656))
	var batch []*Message
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Push(m)
		if i%16 == 15 {
			batch = q.Take(batch)
		}
	}
}

// BenchmarkQueuePushFull is a stalled listener: every push drops the oldest
// audio frame of a full queue (the default 128).
func BenchmarkQueuePushFull(b *testing.B) {
	q := NewQueue(QueueOptions{})
	m := NewAudio(true, make([]byte, 656))
	for i := 0; i < 128; i++ {
		q.Push(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Push(m)
	}
}

// BenchmarkFrameAudio stamps and frames one chunk, once for all its
// listeners: WebSocket header, audio header and the chunk in one buffer
// (two allocations: the buffer and its Message).
func BenchmarkFrameAudio(b *testing.B) {
	chunk := make([]byte, 640)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = newAudioFrame(protocol.KindSource, 0, uint32(i), now, chunk)
	}
}

// BenchmarkFrameControl frames a small control message.
func BenchmarkFrameControl(b *testing.B) {
	payload := []byte(`{"type":"heartbeatAck","timestamp":1700000000000}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = NewControl(payload)
	}
}
