package speech

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanText makes text from a stage (a recognizer, a translation API: text
// we do not control) fit to publish and to pass on: valid UTF-8, no control
// or invisible formatting characters (bidirectional overrides could reorder
// a listener's screen), whitespace collapsed to single spaces, at most max
// bytes.
func CleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(min(len(s), max+8))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || r == '\u2028' || r == '\u2029':
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r) && r != '\u200d':
			// Cf holds the bidi controls, zero-width spaces and the BOM;
			// the zero-width joiner stays, emoji sequences need it.
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		if b.Len() > max+utf8.UTFMax {
			break
		}
	}
	return cut(b.String(), max)
}

// cut shortens s to at most max bytes, preferring a word boundary in the
// last fifth, and ends it with "…".
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	n := max - len(ell)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if sp := strings.LastIndexByte(s[:n], ' '); sp > n*4/5 {
		n = sp
	}
	return strings.TrimRight(s[:n], " ") + ell
}

// SentenceCase capitalizes the first letter and ends the text with a full
// stop when it has no closing punctuation: recognizers that produce bare
// lowercase words (pocketsphinx) read better, and translate better, so.
func SentenceCase(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	last, _ := utf8.DecodeLastRuneInString(s)
	if !unicode.IsPunct(last) {
		s += "."
	}
	return s
}
