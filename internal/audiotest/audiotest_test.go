package audiotest

import (
	"math"
	"testing"
)

// voiced is a crude vowel train: harmonics of a gliding pitch, in
// syllables with pauses, enough spectral structure for Compare.
func voiced(seconds float64) []int16 {
	n := int(seconds * Rate)
	s := make([]int16, n)
	phase := 0.0
	for i := range s {
		t := float64(i) / Rate
		f0 := 120 + 40*math.Sin(2*math.Pi*0.7*t)
		phase += 2 * math.Pi * f0 / Rate
		env := math.Max(0, math.Sin(2*math.Pi*3*t))
		v := 0.0
		for h := 1; h <= 20; h++ {
			v += math.Sin(float64(h)*phase) / float64(h)
		}
		s[i] = int16(6000 * env * v)
	}
	return s
}

func TestCompareIdenticalAndDelayed(t *testing.T) {
	ref := voiced(2)
	r, err := Compare(ref, ref)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lag != 0 || r.LSD > 0.01 || len(r.Problems()) > 0 {
		t.Fatalf("identical: %v %v", r, r.Problems())
	}
	delayed := append(make([]int16, 137), ref...)
	r, err = Compare(ref, delayed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lag != 137 || r.LSD > 0.01 || len(r.Problems()) > 0 {
		t.Fatalf("delayed by 137: %v %v", r, r.Problems())
	}
}

func TestCompareCatchesBrokenAudio(t *testing.T) {
	ref := voiced(2)
	swapped := make([]int16, len(ref))
	for i, v := range ref {
		swapped[i] = int16(uint16(v)>>8 | uint16(v)<<8)
	}
	short := ref[:len(ref)*9/10]
	holes := append([]int16(nil), ref...)
	for i := 0; i+320 <= len(holes); i += 3200 { // 20 ms of every 200 ms
		clear(holes[i : i+320])
	}
	for name, got := range map[string][]int16{"byte order swapped": swapped, "last 10% missing": short, "holes": holes} {
		r, err := Compare(ref, got)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Problems()) == 0 {
			t.Errorf("%s passed: %v", name, r)
		}
	}
}

func TestSpeech(t *testing.T) {
	s := Speech(t, "Hello and welcome.")
	if len(s) < Rate/2 {
		t.Fatalf("speech of %d samples", len(s))
	}
	peak := 0
	for _, v := range s {
		peak = max(peak, int(math.Abs(float64(v))))
	}
	if peak < 1000 {
		t.Fatalf("speech peaks at %d: silent", peak)
	}
	if got := Samples(Bytes(s)); len(got) != len(s) || got[len(s)/2] != s[len(s)/2] {
		t.Fatal("Bytes/Samples do not round-trip")
	}
}
