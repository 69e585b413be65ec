package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/websocket"
)

// ErrClosed is returned by Next and the send methods once this side has
// closed the connection (Close or CloseNow).
var ErrClosed = errors.New("client: connection closed")

// ErrSessionEnded is returned by Speaker and Listener methods once the
// session has ended and its sessionEnded event has been delivered.
var ErrSessionEnded = errors.New("client: session ended")

// ErrReplaced is the end of a Speaker whose connection was replaced by
// another speaker connection of the same owner (connectionReplaced).
var ErrReplaced = errors.New("client: speaker connection replaced by another")

// CloseError is the close frame the server ended the connection with. A
// connection that drops without a close frame reads as code 1006.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("connection closed with %d", e.Code)
	}
	return fmt.Sprintf("connection closed with %d %s", e.Code, e.Reason)
}

// ServerError is an `error` message from the server, or a refused handshake.
type ServerError struct {
	Code    string // e.g. SESSION_NOT_FOUND; empty for a plain HTTP refusal
	Status  int    // HTTP-like status
	Message string
	Details map[string]any
	// Close is the close that followed the error message, when there was one.
	Close *CloseError
}

func (e *ServerError) Error() string {
	s := fmt.Sprintf("server error %d", e.Status)
	if e.Code != "" {
		s = fmt.Sprintf("%s (%d)", e.Code, e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap gives errors.As access to the close that followed the message.
func (e *ServerError) Unwrap() error {
	if e.Close == nil {
		return nil
	}
	return e.Close
}

// FrameError is a frame the server sent that this package cannot decode. It
// is not fatal: the connection stays usable.
type FrameError struct {
	Raw []byte
	Err error
}

func (e *FrameError) Error() string { return "malformed frame from server: " + e.Err.Error() }
func (e *FrameError) Unwrap() error { return e.Err }

// serverErrorFrom reads an `error` message.
func serverErrorFrom(ev Event) *ServerError {
	return &ServerError{
		Code:    ev.String("code"),
		Status:  int(ev.Int("status")),
		Message: ev.String("message"),
		Details: ev.Map("details"),
	}
}

// Retryable reports whether connecting again may succeed where err failed:
// network trouble, a server restarting or overloaded, rate limits, idle and
// age closes. Refusals about the request itself (bad parameters, auth, no
// such session) and this side's own close or cancellation are final.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrClosed) || errors.Is(err, ErrSessionEnded) || errors.Is(err, ErrReplaced) {
		return false
	}
	var se *ServerError
	if errors.As(err, &se) && se.Status != 0 {
		switch se.Status {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseGoingAway, websocket.CloseAbnormalClosure, websocket.CloseInternalServerErr,
			websocket.CloseServiceRestart, websocket.CloseTryAgainLater,
			4008, 4408, 4410, 4429, 4500, 4503:
			return true
		}
		return false
	}
	var fe *FrameError
	return !errors.As(err, &fe)
}
