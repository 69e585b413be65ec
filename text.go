package pentecost

import "unicode/utf8"

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence, so
// a client's string echoed back in an error detail or a caption stays
// printable and bounded.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	// Step back over at most a character's continuation bytes; a longer
	// run of them is not UTF-8 anyway and is cut where it stands.
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}
