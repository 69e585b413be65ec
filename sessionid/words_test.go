package sessionid

import (
	"slices"
	"testing"
)

// avoided are words the curation rules exclude; they must never come back
// into the lists, whatever the blacklist says about them.
var avoided = []string{
	"ass", "beast", "black", "blood", "bloody", "brown", "cross", "dead", "donkey", "fat",
	"goat", "grave", "hell", "naked", "nail", "pig", "red", "serpent", "sin", "sinful",
	"slain", "slave", "snake", "swine", "tomb", "virgin", "white", "worm", "yellow",
}

func checkList(t *testing.T, name string, words []string, min int) {
	t.Helper()
	if len(words) < min {
		t.Errorf("%s: %d words, want at least %d", name, len(words), min)
	}
	if !slices.IsSorted(words) {
		t.Errorf("%s: not sorted", name)
	}
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] {
			t.Errorf("%s: duplicate %q", name, w)
		}
		seen[w] = true
		if len(w) < 3 || len(w) > 10 {
			t.Errorf("%s: %q has %d letters, want 3-10", name, w, len(w))
		}
		for _, c := range []byte(w) {
			if c < 'a' || c > 'z' {
				t.Errorf("%s: %q has a byte %q outside a-z", name, w, c)
				break
			}
		}
		if blocked(w) || blocked(w+"-x-100") {
			t.Errorf("%s: %q trips the blacklist", name, w)
		}
		if slices.Contains(avoided, w) {
			t.Errorf("%s: %q is on the avoid list", name, w)
		}
	}
}

func TestWordLists(t *testing.T) {
	checkList(t, "adjectives", adjectives, 110)
	checkList(t, "nouns", nouns, 110)
	for _, w := range []string{"golden", "faithful"} {
		if !slices.Contains(adjectives, w) {
			t.Errorf("adjectives lack %q", w)
		}
	}
	for _, w := range []string{"eagle", "shepherd", "dove", "psalm"} {
		if !slices.Contains(nouns, w) {
			t.Errorf("nouns lack %q", w)
		}
	}
	// A word in both lists could give "holy-holy-123"; harmless, but a sign
	// of a careless edit.
	for _, a := range adjectives {
		if slices.Contains(nouns, a) {
			t.Errorf("%q is both an adjective and a noun", a)
		}
	}
}

// TestEveryCombinationPasses is exhaustive on purpose: the blacklist also
// looks across the word boundary, so a pair can fail where both words pass.
func TestEveryCombinationPasses(t *testing.T) {
	n := 0
	for _, a := range adjectives {
		for _, w := range nouns {
			id := a + "-" + w + "-427"
			if blocked(id) {
				t.Errorf("%s trips the blacklist", id)
			}
			if !Valid(id) || !Valid(a+"-"+w+"-100") || !Valid(a+"-"+w+"-999") {
				t.Errorf("%s is not Valid", id)
			}
			n++
		}
	}
	t.Logf("%d adjective-noun pairs, %d IDs", n, n*900)
}

func TestBlocked(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"golden-eagle-427", false},
		{"faithful-shepherd-100", false},
		{"holy-shit-123", true},
		{"bull-shitter-123", true},
		{"gracious-hits-123", true}, // "...shits" across the hyphen
		{"golden-ass-427", true},
		{"golden-grass-427", false}, // "ass" counts only as a whole word
		{"sinai-dove-100", false},
		{"holy-sin-100", true},
		{"naked-eagle-100", true},
		{"golden-fat-100", true},
		{"black-dove-100", true},
		{"faithful-slave-100", true},
		{"risen-blood-100", true},
		{"cross-lamb-100", true},
	} {
		if got := blocked(tc.id); got != tc.want {
			t.Errorf("blocked(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
