package sessionid

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pentecost/pentecost"
)

// idPattern is the protocol's definition; Valid must agree with it.
var idPattern = regexp.MustCompile(`^[a-z]+-[a-z]+-[1-9][0-9]{2}$`)

func reference(id string) bool { return len(id) <= MaxLen && idPattern.MatchString(id) }

var validCases = []struct {
	id   string
	want bool
}{
	{"golden-eagle-427", true},
	{"a-b-100", true},
	{"a-b-999", true},
	{"faithful-shepherd-100", true},
	{strings.Repeat("a", 30) + "-" + strings.Repeat("b", 29) + "-123", true},  // exactly 64
	{strings.Repeat("a", 30) + "-" + strings.Repeat("b", 30) + "-123", false}, // 65
	{"", false},
	{"golden-eagle-099", false},
	{"golden-eagle-1000", false},
	{"golden-eagle-42", false},
	{"golden-eagle-4a7", false},
	{"golden-eagle427", false},
	{"goldeneagle-427", false},
	{"golden-eagle-427\n", false},
	{"\ngolden-eagle-427", false},
	{" golden-eagle-427", false},
	{"Golden-eagle-427", false},
	{"golden--eagle-427", false},
	{"-golden-eagle-427", false},
	{"golden-eagle--427", false},
	{"golden-eagle-fox-427", false},
	{"golden-eagle-427-", false},
	{"gölden-eagle-427", false},
	{"golden_eagle_427", false},
	{"golden-eagle-4２7", false},
	{"-b-100", false},
	{"a--100", false},
}

func TestValid(t *testing.T) {
	for _, tc := range validCases {
		if got := Valid(tc.id); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
		if ref := reference(tc.id); ref != tc.want {
			t.Errorf("table is wrong for %q: the regexp says %v", tc.id, ref)
		}
	}
}

// TestValidMatchesRegexp throws many near-miss strings at both: built from
// the bytes that matter at each boundary, so most inputs are close to valid.
func TestValidMatchesRegexp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "z", "q", "-", "-", "0", "1", "9", "5", "A", "`", "{", "/", ":", "\n", " ", "é", "\x00"}
	for range 300_000 {
		var b strings.Builder
		n := r.IntN(20)
		if r.IntN(10) == 0 {
			n = 55 + r.IntN(15) // around MaxLen
		}
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		id := b.String()
		if r.IntN(2) == 0 {
			id += "-" + string(rune('0'+r.IntN(10))) + string(rune('0'+r.IntN(10))) + string(rune('0'+r.IntN(10)))
		}
		if Valid(id) != reference(id) {
			t.Fatalf("Valid(%q) = %v, regexp says %v", id, Valid(id), reference(id))
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check("golden-eagle-427"); err != nil {
		t.Fatalf("Check(valid) = %v", err)
	}
	for _, id := range []string{"", "Golden-Eagle-427", "golden-eagle-42", strings.Repeat("x", 1<<20), strings.Repeat("é", 40)} {
		err := Check(id)
		e := pentecost.AsError(err)
		if e == nil {
			t.Fatalf("Check(%.20q) = %v, want *pentecost.Error", id, err)
		}
		if e.Code != pentecost.ErrInvalidSessionID {
			t.Errorf("code = %s, want %s", e.Code, pentecost.ErrInvalidSessionID)
		}
		if e.Status() != 400 {
			t.Errorf("status = %d, want 400", e.Status())
		}
		got, ok := e.Details["sessionId"].(string)
		if !ok {
			t.Fatalf("details.sessionId = %#v, want a string", e.Details["sessionId"])
		}
		if len(got) > MaxLen || !strings.HasPrefix(id, got) || !utf8.ValidString(got) {
			t.Errorf("details.sessionId = %.80q: want a valid UTF-8 prefix of the id of at most %d bytes", got, MaxLen)
		}
		if len(e.Message) > 300 {
			t.Errorf("message is %d bytes; it must not echo a long id", len(e.Message))
		}
		if !strings.Contains(e.Message, "session ID") {
			t.Errorf("message %q does not say what is wrong", e.Message)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := Valid(id), reference(id); got != want {
			t.Fatalf("Valid(%q) = %v, regexp says %v", id, got, want)
		}
	})
}

func FuzzCheck(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := Check(id)
		if (err == nil) != Valid(id) {
			t.Fatalf("Check(%q) = %v but Valid = %v", id, err, Valid(id))
		}
		if err == nil {
			return
		}
		if pentecost.ErrorCode(err) != pentecost.ErrInvalidSessionID {
			t.Fatalf("Check(%q) code = %s", id, pentecost.ErrorCode(err))
		}
		got, _ := pentecost.AsError(err).Details["sessionId"].(string)
		if len(got) > MaxLen || !strings.HasPrefix(id, got) {
			t.Fatalf("details.sessionId = %q for id %q", got, id)
		}
		if len(id) >= MaxLen && len(got) < MaxLen-utf8.UTFMax {
			t.Fatalf("details.sessionId cut %d bytes to %d", len(id), len(got))
		}
	})
}
