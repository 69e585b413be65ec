package pentecost

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the wire protocol (docs/protocol.md, "Error codes").
const (
	ErrInvalidParameters  = "INVALID_PARAMETERS"
	ErrMissingParameter   = "MISSING_PARAMETER"
	ErrInvalidParameter   = "INVALID_PARAMETER"
	ErrInvalidSessionID   = "INVALID_SESSION_ID"
	ErrInvalidLanguage    = "INVALID_LANGUAGE"
	ErrUnsupportedLang    = "UNSUPPORTED_LANGUAGE"
	ErrInvalidAction      = "INVALID_ACTION"
	ErrInvalidMessage     = "INVALID_MESSAGE"
	ErrAudioTooLarge      = "AUDIO_CHUNK_TOO_LARGE"
	ErrUnauthorized       = "UNAUTHORIZED"
	ErrTokenExpired       = "TOKEN_EXPIRED"
	ErrForbidden          = "FORBIDDEN"
	ErrUnauthorizedAction = "UNAUTHORIZED_ACTION"
	ErrSessionNotFound    = "SESSION_NOT_FOUND"
	ErrRateLimited        = "RATE_LIMIT_EXCEEDED"
	ErrSessionFull        = "SESSION_FULL"
	ErrServiceUnavailable = "SERVICE_UNAVAILABLE"
	ErrSessionIDExhausted = "SESSION_ID_EXHAUSTED"
	ErrInternal           = "INTERNAL_ERROR"

	// ErrSessionIDTaken is internal: a store's answer to Create for an ID in
	// use. It never reaches a client.
	ErrSessionIDTaken = "SESSION_ID_TAKEN"
)

var statusByCode = map[string]int{
	ErrInvalidParameters:  http.StatusBadRequest,
	ErrMissingParameter:   http.StatusBadRequest,
	ErrInvalidParameter:   http.StatusBadRequest,
	ErrInvalidSessionID:   http.StatusBadRequest,
	ErrInvalidLanguage:    http.StatusBadRequest,
	ErrUnsupportedLang:    http.StatusBadRequest,
	ErrInvalidAction:      http.StatusBadRequest,
	ErrInvalidMessage:     http.StatusBadRequest,
	ErrAudioTooLarge:      http.StatusRequestEntityTooLarge,
	ErrUnauthorized:       http.StatusUnauthorized,
	ErrTokenExpired:       http.StatusUnauthorized,
	ErrForbidden:          http.StatusForbidden,
	ErrUnauthorizedAction: http.StatusForbidden,
	ErrSessionNotFound:    http.StatusNotFound,
	ErrRateLimited:        http.StatusTooManyRequests,
	ErrSessionFull:        http.StatusServiceUnavailable,
	ErrServiceUnavailable: http.StatusServiceUnavailable,
	ErrSessionIDExhausted: http.StatusServiceUnavailable,
	ErrInternal:           http.StatusInternalServerError,
	ErrSessionIDTaken:     http.StatusConflict,
}

// Error is an error a client is told about: a code from the table, a
// human-readable message and optional details. Any other error reaching a
// client becomes INTERNAL_ERROR.
type Error struct {
	Code    string
	Message string
	Details map[string]any
	// Err is the underlying cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP-like status of the code.
func (e *Error) Status() int {
	if s, ok := statusByCode[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns the error with one more detail set.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// Wrap returns the error with the underlying cause attached.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// INTERNAL_ERROR otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrInternal
}

// AsError returns err as an *Error, or nil when it is not one.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// NotFound is the SESSION_NOT_FOUND error for id.
func NotFound(id string) *Error {
	return Errorf(ErrSessionNotFound, "session %s not found", id).With("sessionId", id)
}

// Missing is MISSING_PARAMETER for field.
func Missing(field string) *Error {
	return Errorf(ErrMissingParameter, "%s is required", field).With("field", field)
}

// Invalid is INVALID_PARAMETER for field.
func Invalid(field, why string) *Error {
	return Errorf(ErrInvalidParameter, "%s is invalid: %s", field, why).With("field", field)
}

// Internal is the INTERNAL_ERROR a client is told about when cause is not
// one of ours: its message and details carry a fresh correlation ID (also in
// CorrelationID), which the caller logs with cause, so an operator can find
// the log line a user reports without the cause ever reaching the client.
func Internal(cause error) *Error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return Errorf(ErrInternal, "internal error (correlation id %s)", id).With("correlationId", id).Wrap(cause)
}

// CorrelationID is the correlation ID of an error made by Internal, or "".
func (e *Error) CorrelationID() string {
	id, _ := e.Details["correlationId"].(string)
	return id
}
