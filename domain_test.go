package pentecost

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestErrorStatusByCode(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{
		{ErrInvalidParameters, http.StatusBadRequest},
		{ErrAudioTooLarge, http.StatusRequestEntityTooLarge},
		{ErrTokenExpired, http.StatusUnauthorized},
		{ErrUnauthorizedAction, http.StatusForbidden},
		{ErrSessionNotFound, http.StatusNotFound},
		{ErrRateLimited, http.StatusTooManyRequests},
		{ErrSessionFull, http.StatusServiceUnavailable},
		{ErrInternal, http.StatusInternalServerError},
		{ErrSessionIDTaken, http.StatusConflict},
		{"NOT_A_CODE", http.StatusInternalServerError},
	} {
		if got := (&Error{Code: tc.code}).Status(); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.code, got, tc.status)
		}
	}
	// Every code of the table has a status.
	for code, status := range statusByCode {
		if status < 400 {
			t.Errorf("%s has status %d", code, status)
		}
	}
}

func TestErrorBuilders(t *testing.T) {
	base := Errorf(ErrSessionFull, "session %s is full", "golden-eagle-427")
	with := base.With("maxListeners", 500).With("sessionId", "golden-eagle-427")
	if base.Details != nil {
		t.Fatal("With changed its receiver")
	}
	if with.Details["maxListeners"] != 500 || with.Details["sessionId"] != "golden-eagle-427" || with.Message != "session golden-eagle-427 is full" {
		t.Fatalf("%+v", with)
	}
	cause := errors.New("disk full")
	wrapped := with.Wrap(cause)
	if with.Err != nil || !errors.Is(wrapped, cause) || wrapped.Error() != "SESSION_FULL: session golden-eagle-427 is full: disk full" {
		t.Fatalf("wrap: %v", wrapped)
	}
	if with.Error() != "SESSION_FULL: session golden-eagle-427 is full" {
		t.Fatalf("error text %q", with.Error())
	}
	outer := fmt.Errorf("join: %w", wrapped)
	if ErrorCode(outer) != ErrSessionFull || AsError(outer) != wrapped {
		t.Fatal("an *Error behind a wrap is found")
	}
	if ErrorCode(cause) != ErrInternal || AsError(cause) != nil {
		t.Fatal("a foreign error is internal")
	}
	for _, tc := range []struct {
		e     *Error
		code  string
		field string
		text  string
	}{
		{NotFound("golden-eagle-427"), ErrSessionNotFound, "", "session golden-eagle-427 not found"},
		{Missing("sessionId"), ErrMissingParameter, "sessionId", "sessionId is required"},
		{Invalid("volume", "must be between 0.0 and 1.0"), ErrInvalidParameter, "volume", "volume is invalid: must be between 0.0 and 1.0"},
	} {
		if tc.e.Code != tc.code || tc.e.Message != tc.text || (tc.field != "" && tc.e.Details["field"] != tc.field) {
			t.Errorf("%+v", tc.e)
		}
	}
	if NotFound("x").Details["sessionId"] != "x" {
		t.Error("NotFound names the session")
	}
}

// An internal error tells the client a correlation ID and nothing of the
// cause; the ID is new each time.
func TestInternal(t *testing.T) {
	cause := errors.New("SELECT * FROM secrets failed")
	a, b := Internal(cause), Internal(cause)
	id := a.CorrelationID()
	if a.Code != ErrInternal || len(id) != 12 || id == b.CorrelationID() || !errors.Is(a, cause) {
		t.Fatalf("%+v", a)
	}
	if a.Message != "internal error (correlation id "+id+")" || strings.Contains(a.Message, "secrets") {
		t.Fatalf("message %q", a.Message)
	}
	if (&Error{Code: ErrInternal}).CorrelationID() != "" {
		t.Fatal("no ID without Internal")
	}
}

func TestLanguages(t *testing.T) {
	for _, tc := range []struct {
		in           string
		target, code string // target: the normalized code or the error
		source, scod string
	}{
		{"es", "es", "", "es", ""},
		{" EN ", "en", "", "en", ""},
		{"", "", ErrMissingParameter, "", ErrMissingParameter},
		{"   ", "", ErrMissingParameter, "", ErrMissingParameter},
		{"eng", "", ErrInvalidParameter, "", ErrInvalidLanguage},
		{"e1", "", ErrInvalidParameter, "", ErrInvalidLanguage},
		{"xx", "", ErrUnsupportedLang, "", ErrInvalidLanguage},
	} {
		got, err := CheckTargetLanguage("targetLanguage", tc.in)
		if ErrorCode(err) != tc.code && !(err == nil && tc.code == "") || got != tc.target {
			t.Errorf("target %q: %q %v", tc.in, got, err)
		}
		got, err = CheckSourceLanguage("sourceLanguage", tc.in)
		if ErrorCode(err) != tc.scod && !(err == nil && tc.scod == "") || got != tc.source {
			t.Errorf("source %q: %q %v", tc.in, got, err)
		}
	}
	seen := map[string]bool{}
	for _, l := range Languages {
		if !WellFormedLanguage(l.Code) || seen[l.Code] || l.Name == "" {
			t.Errorf("table entry %+v", l)
		}
		seen[l.Code] = true
		if c, ok := LookupLanguage(strings.ToUpper(l.Code)); !ok || c != l.Code {
			t.Errorf("lookup %s", l.Code)
		}
	}
}

func TestSessionRecord(t *testing.T) {
	s := &Session{ID: "golden-eagle-427", Status: StatusActive, Broadcast: BroadcastState{Volume: 1}}
	c := s.Clone()
	c.Status, c.Broadcast.Volume = StatusEnded, 0.5
	if s.Ended() || !c.Ended() || s.Broadcast.Volume != 1 {
		t.Fatal("a clone is independent")
	}
	if UnixMilli(time.Time{}) != 0 || UnixMilli(time.UnixMilli(1234)) != 1234 {
		t.Fatal("UnixMilli")
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"hello", 0, ""},
		{"hello", -1, ""},
		{"héllo", 2, "h"}, // é is 2 bytes: not split
		{"日本語", 4, "日"},   // 3-byte characters
		{"日本語", 6, "日本"},
		{"a😀b", 4, "a"}, // a 4-byte character
		{"a😀b", 5, "a😀"},
		{"\x80\x80\x80\x80\x80", 3, "\x80\x80\x80"}, // not UTF-8: cut where it stands
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) split a character", tc.in, tc.n)
		}
	}
}
