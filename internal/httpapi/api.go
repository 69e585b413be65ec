// Package httpapi serves the HTTP session API, the language table and the
// health endpoints of docs/protocol.md, "Endpoints" and "HTTP session API".
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/sessions"
)

// maxBody bounds request bodies; a session request is a few hundred bytes.
const maxBody = 64 * 1024

// CORS decides which browser origins may call the API.
type CORS interface {
	Allows(origin string) bool
}

// API is the HTTP handler set.
type API struct {
	Sessions *sessions.Service
	Auth     auth.Verifier
	CORS     CORS
	Clock    clockwork.Clock
	Logger   *slog.Logger
	// Ready reports readiness beyond the state store (nil: store only).
	Ready func(ctx context.Context) error
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /sessions", a.cors(http.HandlerFunc(a.create)))
	mux.Handle("GET /sessions/{id}", a.cors(http.HandlerFunc(a.get)))
	mux.Handle("PATCH /sessions/{id}", a.cors(http.HandlerFunc(a.patch)))
	mux.Handle("DELETE /sessions/{id}", a.cors(http.HandlerFunc(a.delete)))
	mux.Handle("OPTIONS /sessions", a.cors(http.HandlerFunc(noContent)))
	mux.Handle("OPTIONS /sessions/{id}", a.cors(http.HandlerFunc(noContent)))
	mux.Handle("GET /languages", a.cors(http.HandlerFunc(a.languages)))
	mux.Handle("OPTIONS /languages", a.cors(http.HandlerFunc(noContent)))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /health", a.health)
}

func noContent(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// cors answers preflights and adds CORS headers for allowed origins only.
func (a *API) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && a.CORS != nil && a.CORS.Allows(origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) now() time.Time { return a.Clock.Now() }

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is the error shape of docs/protocol.md, "HTTP session API".
type errorBody struct {
	Error     string         `json:"error"`
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details"`
	Timestamp int64          `json:"timestamp"`
}

func (a *API) fail(w http.ResponseWriter, err error) {
	e := pentecost.AsError(err)
	if e == nil {
		e = pentecost.Internal(err)
		a.Logger.Error("internal error", "correlationId", e.CorrelationID(), "err", err)
	} else if e.Err != nil {
		a.Logger.Warn("request failed", "code", e.Code, "err", e.Err)
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	if ra, ok := details["retryAfter"].(int); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	writeJSON(w, e.Status(), errorBody{Error: e.Message, Code: e.Code, Message: e.Message, Details: details, Timestamp: a.now().UnixMilli()})
}

// owner verifies the bearer token and returns the caller's sub.
func (a *API) owner(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") || strings.TrimSpace(h[7:]) == "" {
		return "", pentecost.Errorf(pentecost.ErrUnauthorized, "an Authorization: Bearer token is required")
	}
	if a.Auth == nil {
		return "", pentecost.Errorf(pentecost.ErrUnauthorized, "no token verifier is configured")
	}
	id, err := a.Auth.Verify(r.Context(), strings.TrimSpace(h[7:]))
	if err != nil {
		return "", err
	}
	if id.Subject == "" {
		return "", pentecost.Errorf(pentecost.ErrUnauthorized, "token has no sub claim")
	}
	return id.Subject, nil
}

// decode reads a JSON object body into a map of raw fields, so a missing
// field and a wrongly typed one get distinct, precise errors.
func decode(r *http.Request) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, pentecost.Errorf(pentecost.ErrInvalidMessage, "request body is over %d bytes", maxBody)
		}
		return nil, pentecost.Errorf(pentecost.ErrInvalidMessage, "could not read the request body")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, pentecost.Errorf(pentecost.ErrInvalidMessage, "request body must be a JSON object")
	}
	return m, nil
}

// str returns field as a string, or nil if absent; a non-string is
// INVALID_PARAMETER.
func str(m map[string]json.RawMessage, field string) (*string, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, pentecost.Invalid(field, "must be a string")
	}
	return &s, nil
}

// whole returns field as a whole number, or 0 if absent; anything else is
// INVALID_PARAMETER.
func whole(m map[string]json.RawMessage, field string) (int, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return 0, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, pentecost.Invalid(field, "must be a whole number")
	}
	if n == 0 {
		n = -1 // an explicit 0 is not a value, unlike an absent field
	}
	return n, nil
}

// request verifies the caller's token and reads the JSON object body, with
// the optional string fields named in fields. It returns the body for other
// fields.
func (a *API) request(r *http.Request, fields map[string]**string) (owner string, body map[string]json.RawMessage, err error) {
	if owner, err = a.owner(r); err != nil {
		return "", nil, err
	}
	m, err := decode(r)
	if err != nil {
		return "", nil, err
	}
	for field, dst := range fields {
		if *dst, err = str(m, field); err != nil {
			return "", nil, err
		}
	}
	return owner, m, nil
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var src, tier, format *string
	owner, body, err := a.request(r, map[string]**string{"sourceLanguage": &src, "qualityTier": &tier, "audioFormat": &format})
	if err != nil {
		a.fail(w, err)
		return
	}
	ms, err := whole(body, "packetMs")
	if err != nil {
		a.fail(w, err)
		return
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	v, err := a.Sessions.CreateView(r.Context(), owner, sessions.CreateParams{
		SourceLanguage: deref(src), QualityTier: deref(tier), AudioFormat: deref(format), PacketMs: ms,
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", "/sessions/"+v.SessionID)
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	v, err := a.Sessions.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) {
	var p sessions.PatchParams
	owner, _, err := a.request(r, map[string]**string{"status": &p.Status, "sourceLanguage": &p.SourceLanguage, "qualityTier": &p.QualityTier})
	if err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.Sessions.Patch(r.Context(), r.PathValue("id"), owner, p)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	owner, err := a.owner(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := a.Sessions.Delete(r.Context(), r.PathValue("id"), owner); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) languages(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{"languages": pentecost.Languages})
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	// A draining node takes no new clients: a load balancer that checks
	// this sends them to another node while this one's are moved.
	if a.Sessions.ShuttingDown() {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "message": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := a.Sessions.Ping(ctx)
	if err == nil && a.Ready != nil {
		err = a.Ready(ctx)
	}
	if err != nil {
		a.Logger.Warn("not ready", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "message": "state store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// health is the earlier deployment's health body, kept for its monitors.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "healthy", http.StatusOK
	if err := a.Sessions.Ping(ctx); err != nil {
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "timestamp": a.now().UnixMilli(), "service": "pentecost"})
}
