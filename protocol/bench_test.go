package protocol

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/pentecost/pentecost"
)

// Control-message codec costs. None of these is per audio frame, but a
// speaker's status pushes and every listener's joins and heartbeats go
// through them.

func BenchmarkMarshalHeartbeatAck(b *testing.B) {
	ts := int64(1_700_000_000_000)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Marshal(&HeartbeatAck{Header: H(TypeHeartbeatAck, now), ClientTimestamp: &ts})
	}
}

func BenchmarkMarshalSessionJoined(b *testing.B) {
	now := time.Now()
	m := &SessionJoined{
		Header: H(TypeSessionJoined, now), SessionID: "golden-eagle-427", Role: RoleListener,
		SourceLanguage: "en", TargetLanguage: "es", ConnectionID: "0123456789abcdef01234567",
		ListenerCount: 431, BroadcastState: pentecost.BroadcastState{IsActive: true, Volume: 1},
		SpeakerConnected: true, AudioEncoding: "binary", AudioFormat: "pcm16",
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Marshal(m)
	}
}

func BenchmarkMarshalAudioData(b *testing.B) {
	now := time.Now()
	enc := base64.StdEncoding.EncodeToString(make([]byte, 640))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Marshal(&AudioData{
			Header: H(TypeAudioData, now), SessionID: "golden-eagle-427", TargetLanguage: "es",
			SequenceNumber: uint32(i), AudioData: enc, Format: "pcm16",
		})
	}
}

func BenchmarkDecodeClientHeartbeat(b *testing.B) {
	msg := []byte(`{"action":"heartbeat","timestamp":1700000000000}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeClient(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClientJoin(b *testing.B) {
	msg := []byte(`{"action":"joinSession","sessionId":"golden-eagle-427","targetLanguage":"es"}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeClient(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClientAudioChunk(b *testing.B) {
	msg := []byte(`{"action":"audioChunk","audioData":"` + base64.StdEncoding.EncodeToString(make([]byte, 640)) + `"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if _, err := DecodeClient(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutAudioHeader(b *testing.B) {
	dst := make([]byte, AudioHeaderSize)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		PutAudioHeader(dst, KindSource, 0, uint32(i), now)
	}
}

func BenchmarkParseAudioFrame(b *testing.B) {
	f := make([]byte, AudioHeaderSize+640)
	PutAudioHeader(f, KindSource, 0, 7, time.Now())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := ParseAudioFrame(f); err != nil {
			b.Fatal(err)
		}
	}
}
