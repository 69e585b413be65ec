// Package audiotest checks audio the way a listener's ears would, for
// tests: it makes speech with espeak-ng and compares what came out of a
// codec path (an encoder, the server, a decoder) with what went in.
//
// The measure is the log-spectral distance (LSD), not a waveform SNR. A
// lossy speech codec such as Opus at 16-32 kbit/s keeps what is heard, the
// short-time spectrum, and not the waveform: its SILK and CELT layers shape
// noise under the speech, shift phase and smooth fine structure, so the
// waveform SNR of perfectly good Opus speech is a few dB and says little.
// The LSD compares the spectra of short frames in dB, so it is blind to
// phase and sensitive to what breaks a codec path for a listener: a wrong
// sample rate (the spectrum is stretched), a wrong byte order (noise),
// dropped or repeated packets (frames that do not match), wrong gain.
package audiotest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/internal/wav"
)

// Rate is the sample rate of the speech Speech makes: the wire protocol's.
const Rate = wav.SessionSampleRate

// Speech speaks text with espeak-ng and returns it as 16 kHz mono samples.
// It skips the test, naming the tool, when espeak-ng is not installed.
func Speech(tb testing.TB, text string) []int16 {
	tb.Helper()
	bin, err := exec.LookPath("espeak-ng")
	if err != nil {
		tb.Skip("espeak-ng is not installed (apt-get install espeak-ng): cannot make the speech this test compares")
	}
	out := filepath.Join(tb.TempDir(), "speech.wav")
	if b, err := exec.Command(bin, "-v", "en", "-s", "150", "-w", out, text).CombinedOutput(); err != nil {
		tb.Fatalf("espeak-ng: %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := wav.NewReader(f)
	if err != nil {
		tb.Fatalf("espeak-ng output: %v", err)
	}
	conv, err := wav.ToSession(r)
	if err != nil {
		tb.Fatalf("espeak-ng output: %v", err)
	}
	b, err := io.ReadAll(conv)
	if err != nil {
		tb.Fatal(err)
	}
	return Samples(b)
}

// Samples reads little-endian PCM16 bytes (the wire's pcm16).
func Samples(b []byte) []int16 {
	return wav.AppendSamples(nil, b)
}

// Bytes writes samples as little-endian PCM16.
func Bytes(s []int16) []byte {
	return wav.AppendPCM16(nil, s)
}

// Report is what Compare found.
type Report struct {
	// Lag is how many samples got runs behind ref (the codec's delay),
	// found by cross-correlation.
	Lag int
	// LSD is the mean log-spectral distance in dB over the frames where
	// ref has speech (within 40 dB of its loudest frame).
	LSD float64
	// BadFrames is the share of those frames whose distance is over
	// BadFrameDB: a few bad frames are a glitch the mean hides.
	BadFrames float64
	// Frames is how many speech frames were compared.
	Frames int
	// Coverage is len(got) after alignment over len(ref): below 1, audio is
	// missing.
	Coverage float64
}

func (r Report) String() string {
	return fmt.Sprintf("lag %d samples (%.1f ms), LSD %.2f dB over %d speech frames, %.1f%% frames over %.0f dB, coverage %.3f",
		r.Lag, float64(r.Lag)*1000/Rate, r.LSD, r.Frames, 100*r.BadFrames, BadFrameDB, r.Coverage)
}

// Thresholds of Check, from measurements of four espeak-ng sentences
// through libopus 1.3.1 at 24 kbit/s, 20 ms packets (internal/opus tests):
// a clean path scores an LSD of 3.1-3.8 dB with no frame over 10 dB. Broken
// paths score: every 20th packet concealed (PLC) 4.5-5.0 dB with 3.3-5.8%
// of frames over 10 dB; gain halved 5.5-6.7 dB; every 20th packet dropped,
// byte order swapped, 16 kHz played at another rate: over 10 dB.
const (
	MaxLSD       = 5.0  // dB
	BadFrameDB   = 10.0 // dB
	MaxBadFrames = 0.01 // 1% of speech frames
	MinCoverage  = 0.98
)

// Problems lists what in r is over the thresholds; none means the audio
// matches its source as well as a working codec path does.
func (r Report) Problems() []string {
	var p []string
	if r.LSD > MaxLSD {
		p = append(p, fmt.Sprintf("LSD %.2f dB > %.1f dB", r.LSD, MaxLSD))
	}
	if r.BadFrames > MaxBadFrames {
		p = append(p, fmt.Sprintf("%.1f%% of frames over %.0f dB > %.0f%%", 100*r.BadFrames, BadFrameDB, 100*MaxBadFrames))
	}
	if r.Coverage < MinCoverage {
		p = append(p, fmt.Sprintf("coverage %.3f < %.2f", r.Coverage, MinCoverage))
	}
	return p
}

// Check compares got with ref and fails the test when the result is over
// the thresholds, saying which.
func Check(tb testing.TB, ref, got []int16) Report {
	tb.Helper()
	r, err := Compare(ref, got)
	if err != nil {
		tb.Fatalf("compare audio: %v", err)
	}
	tb.Logf("audio quality: %v", r)
	if p := r.Problems(); len(p) > 0 {
		tb.Errorf("audio does not match its source: %s (%v)", strings.Join(p, "; "), r)
	}
	return r
}

const (
	frameLen = 512 // 32 ms at 16 kHz
	hop      = 256
	maxLag   = Rate / 5 // 200 ms
)

// Compare aligns got to ref and measures how far their spectra are apart.
func Compare(ref, got []int16) (Report, error) {
	if len(ref) < 4*frameLen {
		return Report{}, errors.New("reference shorter than 128 ms")
	}
	if len(got) < frameLen {
		return Report{}, fmt.Errorf("got only %d samples", len(got))
	}
	lag := align(ref, got)
	var r Report
	r.Lag = lag
	aligned := got
	if lag >= 0 {
		aligned = got[min(lag, len(got)):]
	} else {
		aligned = append(make([]int16, -lag), got...)
	}
	r.Coverage = math.Min(float64(len(aligned))/float64(len(ref)), 1)

	window := make([]float64, frameLen)
	for i := range window {
		window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/frameLen)
	}
	// Frame energies decide which frames hold speech.
	n := (len(ref)-frameLen)/hop + 1
	energy := make([]float64, n)
	loudest := 0.0
	for i := range energy {
		for _, v := range ref[i*hop : i*hop+frameLen] {
			energy[i] += float64(v) * float64(v)
		}
		loudest = math.Max(loudest, energy[i])
	}
	if loudest == 0 {
		return r, errors.New("reference is silent")
	}
	// Bins from 100 Hz to 7 kHz: below, the codecs' high-pass; above, the
	// wideband low-pass.
	lo, hi := 100*frameLen/Rate, 7000*frameLen/Rate
	// Spectra are compared above a floor 70 dB under the reference's
	// strongest bin anywhere: the quietest detail a listener hears beside
	// the loudest. A floor per frame would make the codec's faint noise in
	// quiet frames of sparse spectra count as much as speech.
	floor := 0.0
	a := make([]complex128, frameLen)
	var pa, pb []float64
	for i := 0; i < n; i++ {
		for j := 0; j < frameLen; j++ {
			a[j] = complex(float64(ref[i*hop+j])*window[j], 0)
		}
		fft(a)
		for _, p := range power(a[lo:hi], pa) {
			floor = math.Max(floor, p)
		}
	}
	floor *= 1e-7
	var sum float64
	bad := 0
	b := make([]complex128, frameLen)
	for i := 0; i < n; i++ {
		if energy[i] < loudest*1e-4 { // 40 dB under the loudest frame
			continue
		}
		for j := 0; j < frameLen; j++ {
			a[j] = complex(float64(ref[i*hop+j])*window[j], 0)
			k := i*hop + j
			v := 0.0
			if k < len(aligned) {
				v = float64(aligned[k])
			}
			b[j] = complex(v*window[j], 0)
		}
		fft(a)
		fft(b)
		pa, pb = power(a[lo:hi], pa), power(b[lo:hi], pb)
		var d float64
		for k := range pa {
			x := 10 * math.Log10((pa[k]+floor)/(pb[k]+floor))
			d += x * x
		}
		d = math.Sqrt(d / float64(len(pa)))
		sum += d
		if d > BadFrameDB {
			bad++
		}
		r.Frames++
	}
	if r.Frames == 0 {
		return r, errors.New("no speech frames in the reference")
	}
	r.LSD = sum / float64(r.Frames)
	r.BadFrames = float64(bad) / float64(r.Frames)
	return r, nil
}

// align returns the lag (in samples, -maxLag..maxLag) at which got best
// matches ref: the peak of their cross-correlation, computed with FFTs.
func align(ref, got []int16) int {
	n := 1
	for n < len(ref)+len(got) {
		n <<= 1
	}
	a, b := make([]complex128, n), make([]complex128, n)
	for i, v := range ref {
		a[i] = complex(float64(v), 0)
	}
	for i, v := range got {
		b[i] = complex(float64(v), 0)
	}
	fft(a)
	fft(b)
	// corr[lag] = sum ref[i]*got[i+lag] = IFFT(conj(A)*B); the inverse is
	// the forward transform of the conjugate, conjugated.
	for i := range a {
		a[i] = cmplx.Conj(cmplx.Conj(a[i]) * b[i])
	}
	fft(a)
	best, bestLag := math.Inf(-1), 0
	for lag := -maxLag; lag <= maxLag; lag++ {
		c := real(a[(lag+n)%n])
		if c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}

func power(x []complex128, dst []float64) []float64 {
	dst = dst[:0]
	for _, c := range x {
		a := cmplx.Abs(c)
		dst = append(dst, a*a)
	}
	return dst
}

// fft is an in-place radix-2 FFT; len(x) must be a power of two.
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u, v := x[start+k], x[start+k+size/2]*wk
				x[start+k], x[start+k+size/2] = u+v, u-v
				wk *= w
			}
		}
	}
}
