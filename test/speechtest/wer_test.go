package speechtest

import (
	"strings"
	"testing"
	"unicode"
)

// words normalizes text for scoring: lower case, punctuation dropped.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// wordErrorRate is (substitutions + deletions + insertions) / reference
// words, by word-level edit distance.
func wordErrorRate(reference, hypothesis string) float64 {
	ref, hyp := words(reference), words(hypothesis)
	if len(ref) == 0 {
		if len(hyp) == 0 {
			return 0
		}
		return 1
	}
	prev := make([]int, len(hyp)+1)
	cur := make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			sub := prev[j-1]
			if ref[i-1] != hyp[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(hyp)]) / float64(len(ref))
}

func TestWordErrorRate(t *testing.T) {
	for _, tc := range []struct {
		ref, hyp string
		want     float64
	}{
		{"Good morning, everyone.", "good morning everyone", 0},
		{"good morning everyone", "good evening everyone", 1.0 / 3},
		{"good morning everyone", "good morning", 1.0 / 3},
		{"good morning", "a good morning to you", 3.0 / 2},
		{"", "", 0},
		{"", "noise", 1},
	} {
		if got := wordErrorRate(tc.ref, tc.hyp); got != tc.want {
			t.Errorf("WER(%q, %q) = %v, want %v", tc.ref, tc.hyp, got, tc.want)
		}
	}
}
