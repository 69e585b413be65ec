package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/protocol"
)

// The speakers send real audio: a speech-like signal made once at start-up
// and cut into chunks (pcm16) or encoded into packets (opus), which every
// speaker then loops, so the generator spends no CPU on audio while it
// measures and the server gets what a real speaker would send.

// speechSeconds is the length of the looped signal.
const speechSeconds = 6

// speechLike synthesizes seconds of 16 kHz mono speech-like sound:
// syllables of a voiced sound (harmonics of a jittered, gliding pitch shaped
// by three formants, with breath noise), many with a fricative (shaped
// noise), and pauses between words. It is not speech, but it has speech's
// spectrum, rhythm and roughness, which is what an encoder's bitrate and
// cost depend on: Opus spends about as much on it as on recorded speech.
// The seed is fixed: every run sends the same audio.
func speechLike(seconds int) []int16 {
	const rate = protocol.SampleRate
	rng := rand.New(rand.NewPCG(1, 2))
	vowels := [][3]float64{{700, 1200, 2600}, {300, 2300, 3000}, {500, 1000, 2500}, {400, 2000, 2700}, {600, 1700, 2500}, {350, 900, 2300}}
	out := make([]int16, 0, seconds*rate)
	phase, hp := 0.0, 0.0
	for len(out) < seconds*rate {
		syl := rate * (150 + rng.IntN(200)) / 1000 // 150-350 ms
		f := vowels[rng.IntN(len(vowels))]
		f0 := 95 + 90*rng.Float64()
		fric := 0
		if rng.IntN(2) == 0 {
			fric = rate * (50 + rng.IntN(80)) / 1000
		}
		for i := 0; i < syl; i++ {
			t := float64(i) / float64(syl)
			var v float64
			noise := rng.NormFloat64()
			if i < fric {
				// High-passed noise, like /s/ or /sh/.
				hp = 0.7*hp + noise
				v = 0.35 * (noise - 0.7*hp) * math.Sin(math.Pi*float64(i)/float64(fric))
			} else {
				pitch := f0 * (1 + 0.12*math.Sin(math.Pi*t) + 0.01*rng.NormFloat64())
				phase += 2 * math.Pi * pitch / rate
				for h := 1; float64(h)*pitch < 7800; h++ {
					hf := float64(h) * pitch
					gain := 1/(1+math.Pow((hf-f[0])/120, 2)) + 0.6/(1+math.Pow((hf-f[1])/160, 2)) + 0.3/(1+math.Pow((hf-f[2])/200, 2))
					v += gain * math.Sin(float64(h)*phase) / math.Sqrt(float64(h))
				}
				v = v*(1+0.05*rng.NormFloat64()) + 0.04*noise
			}
			env := math.Sin(math.Pi * t) // rises and falls over the syllable
			out = append(out, int16(max(-32767, min(32767, 7000*env*v))))
		}
		if rng.IntN(4) == 0 { // a pause between words, not quite silent
			for range rate * (100 + rng.IntN(300)) / 1000 {
				out = append(out, int16(30*rng.NormFloat64()))
			}
		}
	}
	return out[:seconds*rate]
}

// speakerAudio returns the chunks a speaker loops: the signal in
// ChunkBytes pieces for pcm16, or one Opus packet per PacketMs.
func speakerAudio(codec string, chunkBytes, packetMs int) ([][]byte, error) {
	pcm := speechLike(speechSeconds)
	if codec != protocol.CodecOpus {
		raw := wav.AppendPCM16(nil, pcm)
		var chunks [][]byte
		for i := 0; i+chunkBytes <= len(raw); i += chunkBytes {
			chunks = append(chunks, raw[i:i+chunkBytes])
		}
		if len(chunks) == 0 { // a chunk longer than the signal: repeat it
			c := make([]byte, chunkBytes)
			for i := 0; i < chunkBytes; i += len(raw) {
				copy(c[i:], raw)
			}
			chunks = append(chunks, c)
		}
		return chunks, nil
	}
	enc, err := opus.NewEncoder(opus.EncoderConfig{PacketMs: packetMs})
	if err != nil {
		return nil, fmt.Errorf("--codec opus: the speakers send real Opus packets, made at start-up: %w", err)
	}
	var packets [][]byte
	err = enc.Push(pcm, func(p []byte) error {
		packets = append(packets, append([]byte(nil), p...))
		return nil
	})
	return packets, err
}

// meanLen is the mean length of the chunks.
func meanLen(chunks [][]byte) float64 {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	return float64(n) / float64(max(len(chunks), 1))
}

// sendLog is a speaker's record of when each chunk left, by sequence
// number: the server numbers a new session's chunks from 0 in the order it
// receives them, so a listener looks up the send time of what it receives
// instead of reading a timestamp out of the chunk (which must stay real
// audio, and which a server that converts codecs would not keep).
type sendLog struct {
	start    int64 // mono() when chunk 0 is due
	interval int64 // between chunks, ns
	win      window
	sent     []atomic.Int64 // mono() when each chunk was written; 0 not yet
}

func newSendLog(start int64, interval int64, win window) *sendLog {
	n := (win.end-start)/interval + 2
	return &sendLog{start: start, interval: interval, win: win, sent: make([]atomic.Int64, max(n, 1))}
}

// due is when chunk seq was scheduled: window membership goes by the
// schedule, not the send time, so a speaker that runs late (a starved
// generator) does not crowd extra chunks into the window.
func (s *sendLog) due(seq uint32) int64 { return s.start + int64(seq)*s.interval }

// sentAt returns when chunk seq left, or false if no such chunk was sent.
func (s *sendLog) sentAt(seq uint32) (int64, bool) {
	if int(seq) >= len(s.sent) {
		return 0, false
	}
	t := s.sent[seq].Load()
	return t, t != 0
}
