package speech

import (
	"math"
	"time"
)

// EnergyVAD calls a frame speech when its level stands out from the noise
// floor: louder than the quietest frame of the last few seconds by MarginDB,
// and louder than MinDB in any case. It needs no model and adapts to a
// room's steady noise (a fan, a hum) within Window (until then it takes
// any sound over MinDB for speech, so a session joined mid-sentence is
// heard at once, and a noisy room yields one sentence of noise); it cannot
// tell speech from other loud sounds (music, applause), which a learned VAD
// could.
type EnergyVAD struct {
	// MarginDB above the noise floor makes a frame speech; 0 means 12.
	MarginDB float64
	// MinDB is the level (dBFS) below which a frame is never speech; 0
	// means -55.
	MinDB float64
	// Window is how many frames the noise floor looks back; 0 means 250
	// (5 s).
	Window int

	hist []float64
	next int
}

// Speech implements VAD.
func (v *EnergyVAD) Speech(frame []int16) bool {
	if v.hist == nil {
		w := v.Window
		if w <= 0 {
			w = 250
		}
		v.hist = make([]float64, 0, w)
	}
	db := levelDB(frame)
	if len(v.hist) < cap(v.hist) {
		v.hist = append(v.hist, db)
	} else {
		v.hist[v.next] = db
		v.next = (v.next + 1) % len(v.hist)
	}
	margin, minDB := v.MarginDB, v.MinDB
	if margin == 0 {
		margin = 12
	}
	if minDB == 0 {
		minDB = -55
	}
	floor := db
	for _, h := range v.hist {
		floor = min(floor, h)
	}
	if len(v.hist) < cap(v.hist) {
		// Until the window has filled, a quiet room is assumed: a session
		// joined mid-sentence has no pause to learn the floor from yet.
		floor = min(floor, minDB-margin)
	}
	return db >= max(floor+margin, minDB)
}

// levelDB is a frame's RMS level in dB relative to full scale, at least
// -100.
func levelDB(frame []int16) float64 {
	if len(frame) == 0 {
		return -100
	}
	var sum float64
	for _, s := range frame {
		f := float64(s)
		sum += f * f
	}
	rms := math.Sqrt(sum/float64(len(frame))) / 32768
	if rms <= 1e-5 {
		return -100
	}
	return 20 * math.Log10(rms)
}

// AlwaysSpeech is the VAD of --vad none: everything is speech, so sentences
// are cut only at the segmenter's maximum length. For rooms where an energy
// VAD fails (continuous music under the speaker), at the cost of latency.
type AlwaysSpeech struct{}

// Speech implements VAD.
func (AlwaysSpeech) Speech([]int16) bool { return true }

// SegmenterConfig sets how speech is cut into sentences.
type SegmenterConfig struct {
	// Pause is the silence that ends a sentence; 0 means 500 ms. Shorter
	// cuts sooner (lower latency) but splits sentences at commas.
	Pause time.Duration
	// MaxSentence cuts a sentence that runs longer; 0 means 12 s.
	MaxSentence time.Duration
	// PreRoll is the audio kept from before the speech started, so the
	// first syllable is not clipped; 0 means 200 ms.
	PreRoll time.Duration
	// Onset is how much consecutive speech starts a sentence; 0 means 40
	// ms (a click is shorter).
	Onset time.Duration
	// MinSpeech is how much speech a sentence needs to be recognized at
	// all; 0 means 200 ms.
	MinSpeech time.Duration
}

func frames(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	return max(1, int(d/(20*time.Millisecond)))
}

// segmenter cuts a stream of frames into sentences with a VAD. It is pure:
// it sees only frames, never a clock.
type segmenter struct {
	vad                                      VAD
	pause, maxLen, preRoll, onset, minSpeech int // in frames

	pre     [][]int16 // the last preRoll frames while idle
	run     int       // consecutive speech frames while idle
	in      bool      // inside a sentence
	length  int       // frames of the current sentence
	silence int       // trailing non-speech frames of the current sentence
	speechN int       // speech frames of the current sentence
}

func newSegmenter(vad VAD, c SegmenterConfig) *segmenter {
	return &segmenter{
		vad:       vad,
		pause:     frames(c.Pause, 500*time.Millisecond),
		maxLen:    frames(c.MaxSentence, 12*time.Second),
		preRoll:   frames(c.PreRoll, 200*time.Millisecond),
		onset:     frames(c.Onset, 40*time.Millisecond),
		minSpeech: frames(c.MinSpeech, 200*time.Millisecond),
	}
}

// step is what the segmenter made of one frame.
type step struct {
	speech bool      // the VAD called the frame speech
	begin  bool      // a sentence begins: write pre, then the frame
	pre    [][]int16 // the audio before the frame that belongs to the sentence
	write  bool      // the frame belongs to the current sentence
	end    bool      // the sentence ends with this frame
	// Of an ended sentence:
	forced   bool // cut at MaxSentence rather than at a pause
	tooBrief bool // less than MinSpeech of speech: not worth recognizing
	// speechEnd is how many frames before this one (inclusive) the
	// sentence's speech ended.
	speechEnd int
}

// push classifies one frame. The frame is kept (in the pre-roll) until
// preRoll more frames have been pushed: callers pass a fresh slice.
func (s *segmenter) push(frame []int16) step {
	speech := s.vad.Speech(frame)
	if !s.in {
		if speech {
			s.run++
		} else {
			s.run = 0
		}
		if s.run < s.onset {
			s.pre = append(s.pre, frame)
			if len(s.pre) > s.preRoll {
				s.pre[0] = nil
				s.pre = s.pre[1:]
			}
			return step{speech: speech}
		}
		st := step{speech: true, begin: true, pre: s.pre, write: true}
		s.pre = nil
		s.in, s.length, s.silence, s.speechN, s.run = true, len(st.pre)+1, 0, s.onset, 0
		return st
	}
	s.length++
	if speech {
		s.silence = 0
		s.speechN++
	} else {
		s.silence++
	}
	st := step{speech: speech, write: true}
	switch {
	case s.silence >= s.pause:
	case s.length >= s.maxLen:
		st.forced = true
	default:
		return st
	}
	st.end, st.tooBrief, st.speechEnd = true, s.speechN < s.minSpeech, s.silence
	s.in = false
	return st
}
