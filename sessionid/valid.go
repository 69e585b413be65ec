// Package sessionid makes and checks session IDs of the form
// adjective-noun-NNN (docs/protocol.md, "Session IDs"), e.g. golden-eagle-427.
package sessionid

import (
	"fmt"

	"github.com/pentecost/pentecost"
)

// MaxLen is the longest ID Valid accepts, in bytes.
const MaxLen = 64

// Valid reports whether id matches ^[a-z]+-[a-z]+-[1-9][0-9]{2}$ and is at
// most MaxLen bytes. It does not require the words to come from this
// package's lists: IDs minted by earlier deployments stay valid.
//
// It is hand-written rather than a regexp because it runs on every join and
// every HTTP request; the tests hold it to the regexp's answers.
func Valid(id string) bool {
	n := len(id)
	// The shortest ID is "a-b-100".
	if n < 7 || n > MaxLen {
		return false
	}
	if id[n-4] != '-' || id[n-3] < '1' || id[n-3] > '9' || !isDigit(id[n-2]) || !isDigit(id[n-1]) {
		return false
	}
	words := id[:n-4]
	hyphens := 0
	for i := 0; i < len(words); i++ {
		c := words[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c == '-' && i > 0 && i < len(words)-1 && words[i-1] != '-':
			hyphens++
		default:
			return false
		}
	}
	return hyphens == 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Check returns nil for a valid id and otherwise an INVALID_SESSION_ID error
// whose details carry the id, cut to MaxLen bytes so that a hostile client
// cannot make the server echo megabytes back.
func Check(id string) error {
	if Valid(id) {
		return nil
	}
	short := pentecost.Truncate(id, MaxLen)
	var msg string
	switch {
	case id == "":
		msg = "session ID is empty; want adjective-noun-NNN, e.g. golden-eagle-427"
	case len(id) > MaxLen:
		msg = fmt.Sprintf("session ID is %d bytes long; at most %d allowed", len(id), MaxLen)
	default:
		msg = fmt.Sprintf("session ID %q is not valid; want adjective-noun-NNN "+
			"(lowercase words, a number from 100 to 999), e.g. golden-eagle-427", short)
	}
	return (&pentecost.Error{Code: pentecost.ErrInvalidSessionID, Message: msg}).With("sessionId", short)
}
