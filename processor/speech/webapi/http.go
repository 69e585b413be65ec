// Package webapi implements the speech pipeline's stages with the HTTP APIs
// of servers people already run:
//
//   - Transcriptions: speech recognition through the OpenAI-compatible
//     POST /v1/audio/transcriptions (OpenAI, Groq, whisper.cpp's
//     whisper-server, faster-whisper servers such as Speaches, LocalAI).
//   - LibreTranslate: translation through LibreTranslate's POST /translate.
//   - DeepL: translation through DeepL's POST /v2/translate.
//   - Speech: speech synthesis through the OpenAI-compatible
//     POST /v1/audio/speech (OpenAI, and Piper- or Kokoro-based servers
//     such as openedai-speech, Kokoro-FastAPI, LocalAI).
//
// API keys are given by the caller (the command line reads them from the
// environment), sent only in the header or body the API documents, never in
// a URL, and never written into an error or a log line: a server's error
// message that echoes a key has it replaced.
//
// Every call is bounded: by its context (the pipeline sets a timeout per
// stage), by a limit on the response size, and by a cool-down after the
// server says it is overloaded (429 or 503, with Retry-After when it gives
// one), during which calls fail at once without reaching it.
package webapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost/processor/speech"
)

// Limits on what a server may send back.
const (
	maxJSONResponse  = 1 << 20  // a transcript or a translation is a few KiB
	maxErrorBody     = 8 << 10  // enough for any error message
	maxAudioResponse = 32 << 20 // about 11 minutes of 24 kHz speech
	maxMessage       = 300      // bytes of a server's error message kept
)

// Cool-down after an overload answer without a usable Retry-After, and the
// most a Retry-After is believed.
const (
	defaultCooldown = 2 * time.Second
	maxCooldown     = 10 * time.Minute
)

// ErrCoolingDown is returned, without a request, while a server that
// answered 429 or 503 is left alone.
var ErrCoolingDown = errors.New("cooling down after the server asked to slow down")

// StatusError is a server's error answer.
type StatusError struct {
	Status     int
	Message    string        // what the server said, cleaned and shortened
	RetryAfter time.Duration // from Retry-After, when present
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

// endpoint is one API endpoint and what the client knows of it.
type endpoint struct {
	name   string // for errors: "transcription API"
	url    string
	key    string // redacted from every error
	client *http.Client
	now    func() time.Time

	mu    sync.Mutex
	until time.Time // no calls before this (cool-down)
}

func newEndpoint(name, base, path, key string, client *http.Client) (*endpoint, error) {
	u, err := CheckURL(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &endpoint{name: name, url: strings.TrimRight(u.String(), "/") + path, key: key, client: client, now: time.Now}, nil
}

// CheckURL parses an API base URL: http or https, a host, no credentials
// (keys come from the environment, not from URLs that end up in process
// lists and logs).
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: want http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q: no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("URL with credentials: put the key in the environment instead")
	}
	return u, nil
}

// PlainHTTPWarning says why sending a key to base is unwise, or "".
func PlainHTTPWarning(base string, hasKey bool) string {
	u, err := url.Parse(base)
	if err != nil || !hasKey || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("the API key is sent to %s over plain http: anyone on the path can read it", u.Host)
}

// post sends a request and returns the response of a 2xx answer; any other
// answer is a *StatusError, and an overload answer starts a cool-down.
func (e *endpoint) post(ctx context.Context, contentType string, body []byte, header http.Header) (*http.Response, error) {
	e.mu.Lock()
	wait := e.until.Sub(e.now())
	e.mu.Unlock()
	if wait > 0 {
		return nil, fmt.Errorf("%s: %w (%v more)", e.name, ErrCoolingDown, wait.Round(time.Second))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	return e.do(req)
}

func (e *endpoint) get(ctx context.Context, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return e.do(req)
}

func (e *endpoint) do(req *http.Request) (*http.Response, error) {
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, e.redactErr(err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	se := &StatusError{Status: resp.StatusCode, Message: e.redact(errorMessage(b))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), e.now())
		cool := se.RetryAfter
		if cool <= 0 {
			cool = defaultCooldown
		}
		e.mu.Lock()
		e.until = e.now().Add(min(cool, maxCooldown))
		e.mu.Unlock()
	}
	return nil, fmt.Errorf("%s: %w", e.name, se)
}

// postJSON posts body and reads the JSON answer with parse. A parse error
// names the endpoint, with the key redacted: it quotes the server's text.
func (e *endpoint) postJSON(ctx context.Context, contentType string, body []byte, header http.Header, parse func([]byte) (string, error)) (string, error) {
	resp, err := e.post(ctx, contentType, body, header)
	if err != nil {
		return "", err
	}
	b, err := e.readJSON(resp)
	if err != nil {
		return "", err
	}
	out, err := parse(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.name, e.redactErr(err))
	}
	return out, nil
}

// readJSON decodes a JSON answer of at most maxJSONResponse bytes.
func (e *endpoint) readJSON(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read the answer: %w", e.name, e.redactErr(err))
	}
	if len(b) > maxJSONResponse {
		return nil, fmt.Errorf("%s: answer over %d bytes", e.name, maxJSONResponse)
	}
	return b, nil
}

func (e *endpoint) redact(s string) string {
	if len(e.key) >= 4 {
		s = strings.ReplaceAll(s, e.key, "[key]")
	}
	return s
}

func (e *endpoint) redactErr(err error) error {
	if len(e.key) >= 4 && strings.Contains(err.Error(), e.key) {
		return errors.New(e.redact(err.Error()))
	}
	return err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		// Clamped before the multiplication: a huge count of seconds would
		// overflow Duration to a negative value and shrink a long back-off
		// to the short default.
		n = min(n, int(maxCooldown/time.Second))
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxCooldown)
	}
	return 0
}

// errorMessage finds the message in an error body, whichever shape the
// server uses: {"error":{"message":...}} (OpenAI, Groq, LocalAI),
// {"error":"..."} (LibreTranslate, whisper.cpp), {"message":"..."} (DeepL),
// {"detail":"..."} (FastAPI servers), or plain text.
func errorMessage(b []byte) string {
	var m struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &m) == nil {
		if msg := rawMessage(m.Error); msg != "" {
			return clean(msg)
		}
		if m.Message != "" {
			return clean(m.Message)
		}
		if msg := rawMessage(m.Detail); msg != "" {
			return clean(msg)
		}
	}
	return clean(string(b))
}

// rawMessage is a JSON string, or the "message" of a JSON object.
func rawMessage(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Message
	}
	return ""
}

// clean makes a server's message fit for a log line: one line of printable
// text, at most maxMessage bytes.
func clean(s string) string { return speech.CleanText(s, maxMessage) }
