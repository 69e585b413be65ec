package speech

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pentecost/pentecost/processor"
)

// scripted is a VAD that replays a script: 's' speech, '.' silence.
type scripted struct {
	script string
	i      int
}

func (v *scripted) Speech([]int16) bool {
	c := v.script[v.i%len(v.script)]
	v.i++
	return c == 's'
}

// runSegmenter pushes len(script) frames and renders what happened per
// frame: '[' a sentence began, ']' it ended at a pause, '|' it was cut at
// the maximum length, '-' inside a sentence, ' ' outside.
func runSegmenter(script string, c SegmenterConfig) (string, []step) {
	seg := newSegmenter(&scripted{script: script}, c)
	var b strings.Builder
	var ends []step
	for range script {
		st := seg.push(make([]int16, FrameSamples))
		switch {
		case st.begin:
			b.WriteByte('[')
		case st.end && st.forced:
			b.WriteByte('|')
			ends = append(ends, st)
		case st.end:
			b.WriteByte(']')
			ends = append(ends, st)
		case st.write:
			b.WriteByte('-')
		default:
			b.WriteByte(' ')
		}
	}
	return b.String(), ends
}

func TestSegmenterCutsAtPauses(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * 20 * time.Millisecond }
	c := SegmenterConfig{Pause: ms(3), MaxSentence: ms(20), PreRoll: ms(2), Onset: ms(2), MinSpeech: ms(4)}
	for _, tc := range []struct{ script, want string }{
		// A click (one frame) does not start a sentence; two frames do.
		{"..s....ss.........", "        [--]      "},
		// A pause shorter than Pause stays inside the sentence.
		{"..ssss..ssss......", "   [----------]   "},
		// A long sentence is cut at MaxSentence (pre-roll included) and
		// goes on in a new one, which gets the frame in between as its
		// pre-roll.
		{strings.Repeat("s", 30) + "..........", " [" + strings.Repeat("-", 17) + "| [" + strings.Repeat("-", 10) + "]       "},
	} {
		got, _ := runSegmenter(tc.script, c)
		if got != tc.want {
			t.Errorf("script %q\n got  %q\n want %q", tc.script, got, tc.want)
		}
	}
	// The pre-roll: the frames before the onset that the sentence gets.
	seg := newSegmenter(&scripted{script: "....ss"}, c)
	var st step
	for range 6 {
		st = seg.push(make([]int16, FrameSamples))
	}
	if !st.begin || len(st.pre) != 2 {
		t.Fatalf("begin %v with %d pre-roll frames, want 2 (the first speech frame and one before it)", st.begin, len(st.pre))
	}
	// Too little speech is flagged, and speechEnd counts the pause.
	_, ends := runSegmenter("..ss......", c)
	if len(ends) != 1 || !ends[0].tooBrief || ends[0].speechEnd != 3 {
		t.Fatalf("ends %+v, want one too brief, speech ended 3 frames before", ends)
	}
}

// tone is a 20 ms frame of a 300 Hz tone at level dB (full scale 0).
func tone(db float64, rng *rand.Rand, noiseDB float64) []int16 {
	f := make([]int16, FrameSamples)
	a := 32767 * math.Pow(10, db/20) * math.Sqrt2
	n := 32767 * math.Pow(10, noiseDB/20) * math.Sqrt(3)
	for i := range f {
		v := rng.Float64()*2 - 1
		s := n * v
		if db > -100 {
			s += a * math.Sin(2*math.Pi*300*float64(i)/processor.SampleRate)
		}
		f[i] = int16(max(-32768, min(32767, s)))
	}
	return f
}

func TestEnergyVADAdaptsToSteadyNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Joined mid-sentence: speech is speech from the first frame.
	v := &EnergyVAD{Window: 50}
	if !v.Speech(tone(-20, rng, -200)) {
		t.Fatal("the first frame of speech not called speech")
	}
	// A room at -45 dBFS of noise: once the window has filled, noise is
	// not speech although it is above MinDB.
	v = &EnergyVAD{Window: 50}
	for i := range 100 {
		if s := v.Speech(tone(-200, rng, -45)); s && i >= 50 {
			t.Fatalf("noise frame %d called speech", i)
		}
	}
	if !v.Speech(tone(-20, rng, -45)) {
		t.Fatal("speech 25 dB over the noise not called speech")
	}
	if v.Speech(tone(-40, rng, -45)) {
		t.Fatal("a sound 5 dB over the noise called speech")
	}
	// Digital silence, then quiet speech under MinDB: never speech.
	v = &EnergyVAD{Window: 50}
	for range 10 {
		v.Speech(make([]int16, FrameSamples))
	}
	if v.Speech(tone(-60, rng, -200)) {
		t.Fatal("a sound under MinDB called speech")
	}
	if !v.Speech(tone(-30, rng, -200)) {
		t.Fatal("speech after digital silence not called speech")
	}
}

func TestCleanText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  Hola \t a\ntodos  ", "Hola a todos"},
		{"a\x00b\x1bc\u200bd\u202ee\ufefff", "abcdef"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"line\u2028sep", "line sep"},
		{"family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"},
		{"", ""},
	} {
		if got := CleanText(tc.in, 100); got != tc.want {
			t.Errorf("CleanText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("palabra ", 400)
	got := CleanText(long, processor.MaxCaptionBytes)
	if len(got) > processor.MaxCaptionBytes || !strings.HasSuffix(got, "palabra…") {
		t.Fatalf("long text cut to %d bytes, ending %q", len(got), got[len(got)-20:])
	}
	if got := CleanText(strings.Repeat("é", 1500), processor.MaxCaptionBytes); len(got) > processor.MaxCaptionBytes || !utf8.ValidString(got) {
		t.Fatalf("multibyte text cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestSentenceCase(t *testing.T) {
	for in, want := range map[string]string{
		"good morning everyone": "Good morning everyone.",
		"is it?":                "Is it?",
		"ésta":                  "Ésta.",
		"":                      "",
	} {
		if got := SentenceCase(in); got != want {
			t.Errorf("SentenceCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("Hola a todos", 2000)
	f.Add("\xff\xfe\u202e\x00 a  b", 5)
	f.Add(strings.Repeat("é ", 50), 17)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 4 || max > 4000 {
			return
		}
		got := CleanText(s, max)
		if len(got) > max {
			t.Fatalf("%d bytes over the limit %d", len(got), max)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("whitespace not collapsed: %q", got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != '\u200d') {
				t.Fatalf("control or format character %U kept in %q", r, got)
			}
		}
		if CleanText(got, max) != got {
			t.Fatalf("not idempotent on %q", got)
		}
	})
}
