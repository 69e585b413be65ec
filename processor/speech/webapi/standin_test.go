package webapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pentecost/pentecost/internal/wav"
)

// The servers below are stand-ins: small local servers that implement the
// documented request and response shapes of the real APIs (OpenAI's
// /v1/audio/transcriptions and /v1/audio/speech, whisper.cpp's
// whisper-server, LibreTranslate's /translate and /languages, DeepL's
// /v2/translate), which cannot be reached from CI. Each checks the request
// the way the real server would reject it, and can be told to fail the way
// real servers do.

const testKey = "sk-test-0123456789abcdef"

// standIn is a stand-in server: handle answers well-formed requests; fail,
// when set, answers first (an injected failure) and reports whether it did.
type standIn struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests int
	fail     func(w http.ResponseWriter, r *http.Request) bool
}

func newStandIn(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *standIn {
	s := &standIn{t: t}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		fail := s.fail
		s.mu.Unlock()
		// A key must never travel in a URL.
		if strings.Contains(r.URL.String(), testKey) {
			t.Errorf("the key is in the URL %s", r.URL)
		}
		if fail != nil && fail(w, r) {
			return
		}
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *standIn) setFail(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *standIn) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// openAIError is OpenAI's error shape (also Groq's and LocalAI's).
func openAIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil}})
}

// bearer checks OpenAI-style authentication.
func bearer(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		openAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+". You can find your API key at https://platform.openai.com/account/api-keys.")
		return false
	}
	return true
}

// transcriptionStandIn stands in for OpenAI's POST /v1/audio/transcriptions:
// multipart with file (a WAV here), model, language, response_format.
// It answers {"text": ...} with the duration it heard, so a test can check
// the audio arrived whole.
func transcriptionStandIn(t *testing.T) *standIn {
	return newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/transcriptions" {
			openAIError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")")
			return
		}
		if !bearer(w, r) {
			return
		}
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			openAIError(w, http.StatusBadRequest, "Expected multipart/form-data")
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		fields := map[string]string{}
		var audio []byte
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				openAIError(w, http.StatusBadRequest, "bad multipart")
				return
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				if !strings.HasSuffix(p.FileName(), ".wav") || p.Header.Get("Content-Type") != "audio/wav" {
					openAIError(w, http.StatusBadRequest, "Invalid file format.")
					return
				}
				audio = b
			} else {
				fields[p.FormName()] = string(b)
			}
		}
		if fields["model"] != "whisper-1" || fields["response_format"] != "json" || fields["language"] != "en" {
			openAIError(w, http.StatusBadRequest, "unexpected fields")
			t.Errorf("fields %v", fields)
			return
		}
		wr, err := wav.NewReader(bytes.NewReader(audio))
		if err != nil || wr.Format.SampleRate != 16000 || wr.Format.Channels != 1 || wr.DataSize < 0 {
			openAIError(w, http.StatusBadRequest, "Audio file might be corrupted or unsupported")
			return
		}
		pcm, _ := io.ReadAll(wr)
		if int64(len(pcm)) != wr.DataSize {
			openAIError(w, http.StatusBadRequest, "Audio file is truncated")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"text": " Heard " + (time.Duration(len(pcm)/2) * time.Second / 16000).String() + "."})
	})
}

// libreStandIn stands in for LibreTranslate: POST /translate with JSON
// {q, source, target, format, api_key}, GET /languages.
func libreStandIn(t *testing.T) *standIn {
	return newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/languages":
			writeJSON(w, http.StatusOK, []map[string]any{
				{"code": "en", "name": "English", "targets": []string{"en", "es", "fr"}},
				{"code": "es", "name": "Spanish", "targets": []string{"en", "es"}},
			})
		case r.Method == http.MethodPost && r.URL.Path == "/translate":
			var req struct{ Q, Source, Target, Format, APIKey string }
			if err := json.NewDecoder(r.Body).Decode(&struct {
				Q      *string `json:"q"`
				Source *string `json:"source"`
				Target *string `json:"target"`
				Format *string `json:"format"`
				APIKey *string `json:"api_key"`
			}{&req.Q, &req.Source, &req.Target, &req.Format, &req.APIKey}); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid request"})
				return
			}
			switch {
			case req.APIKey != testKey:
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "Invalid API key"})
			case req.Q == "":
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid request: missing q parameter"})
			case req.Target != "es" && req.Target != "fr":
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": req.Target + " is not supported"})
			case req.Format != "text":
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": req.Format + " format is not supported"})
			default:
				writeJSON(w, http.StatusOK, map[string]string{"translatedText": "[" + req.Target + "] " + req.Q})
			}
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found"})
		}
	})
}

// deeplStandIn stands in for DeepL's POST /v2/translate.
func deeplStandIn(t *testing.T) *standIn {
	return newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/translate" {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
			return
		}
		if r.Header.Get("Authorization") != "DeepL-Auth-Key "+testKey {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Wrong endpoint. Use https://api.deepl.com"})
			return
		}
		var req struct {
			Text       []string `json:"text"`
			SourceLang string   `json:"source_lang"`
			TargetLang string   `json:"target_lang"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Text) == 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Parameter 'text' not specified."})
			return
		}
		if req.TargetLang == "EN" || req.TargetLang == "PT" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Value for 'target_lang' not supported."})
			return
		}
		var out []map[string]string
		for _, s := range req.Text {
			out = append(out, map[string]string{"detected_source_language": req.SourceLang, "text": "[" + req.TargetLang + "] " + s})
		}
		writeJSON(w, http.StatusOK, map[string]any{"translations": out})
	})
}

// speechStandIn stands in for OpenAI's POST /v1/audio/speech with
// response_format wav: it streams 24 kHz speech (a tone, 0.1 s per input
// character) with the unknown-size header OpenAI uses when streaming,
// flushing as it goes.
func speechStandIn(t *testing.T) *standIn {
	return newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/speech" {
			openAIError(w, http.StatusNotFound, "Invalid URL")
			return
		}
		if !bearer(w, r) {
			return
		}
		var req struct{ Model, Input, Voice, ResponseFormat string }
		if err := json.NewDecoder(r.Body).Decode(&struct {
			Model          *string `json:"model"`
			Input          *string `json:"input"`
			Voice          *string `json:"voice"`
			ResponseFormat *string `json:"response_format"`
		}{&req.Model, &req.Input, &req.Voice, &req.ResponseFormat}); err != nil || req.Input == "" || req.Voice == "" || req.Model == "" {
			openAIError(w, http.StatusBadRequest, "missing input, voice or model")
			return
		}
		if req.ResponseFormat != "wav" {
			w.Header().Set("Content-Type", "audio/mpeg")
			_, _ = w.Write([]byte("ID3\x04fake mp3"))
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		ww, _ := wav.NewWriter(w, 24000, 1) // a ResponseWriter cannot seek: streaming header
		samples := len(req.Input) * 2400
		buf := make([]byte, 0, 4800)
		for i := range samples {
			v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/24000))
			buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
			if len(buf) == cap(buf) || i == samples-1 {
				_, _ = ww.Write(buf)
				buf = buf[:0]
				w.(http.Flusher).Flush()
			}
		}
		_ = ww.Close()
	})
}

// wait bounds every wait in these tests; it is a deadlock guard, never a
// timing assertion.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func tone(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/16000))
	}
	return pcm
}

func TestTranscriptionsAgainstOpenAIStandIn(t *testing.T) {
	srv := transcriptionStandIn(t)
	tr, err := NewTranscriptions(TranscriptionsConfig{URL: srv.URL + "/v1", Model: "whisper-1", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	rec, err := tr.Open(ctx, "en")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := rec.Begin(nil)
	pcm := tone(24000)
	for i := 0; i < len(pcm); i += 320 {
		_ = u.Write(pcm[i:min(len(pcm), i+320)])
	}
	text, err := u.End(ctx)
	if err != nil || text != " Heard 1.5s." {
		t.Fatalf("End = %q, %v", text, err)
	}
	// An utterance with no audio costs no request.
	u, _ = rec.Begin(nil)
	if text, err := u.End(ctx); text != "" || err != nil || srv.count() != 1 {
		t.Fatalf("empty utterance: %q, %v, %d requests", text, err, srv.count())
	}
}

func TestTranscriptionsInterim(t *testing.T) {
	srv := transcriptionStandIn(t)
	tr, _ := NewTranscriptions(TranscriptionsConfig{URL: srv.URL + "/v1", Model: "whisper-1", Key: testKey, Interim: 500 * time.Millisecond})
	ctx := testCtx(t)
	rec, _ := tr.Open(ctx, "en")
	partials := make(chan string, 10)
	u, _ := rec.Begin(func(s string) { partials <- s })
	_ = u.Write(tone(6000))
	_ = u.Write(tone(4000)) // 0.625 s: an interim request goes out
	select {
	case p := <-partials:
		if p != " Heard 625ms." {
			t.Fatalf("partial %q", p)
		}
	case <-ctx.Done():
		t.Fatal("no interim transcript")
	}
	if text, err := u.End(ctx); text != " Heard 625ms." || err != nil {
		t.Fatalf("End = %q, %v", text, err)
	}
}

func TestWhisperCppErrorsIn200AreErrors(t *testing.T) {
	// whisper.cpp's whisper-server answers 200 {"error": "..."} when it
	// cannot read the file.
	srv := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"error": "failed to read WAV file"})
	})
	tr, _ := NewTranscriptions(TranscriptionsConfig{URL: srv.URL})
	rec, _ := tr.Open(testCtx(t), "en")
	u, _ := rec.Begin(nil)
	_ = u.Write(tone(320))
	if _, err := u.End(testCtx(t)); err == nil || !strings.Contains(err.Error(), "failed to read WAV file") {
		t.Fatalf("End = %v", err)
	}
}

func TestLibreTranslateAgainstStandIn(t *testing.T) {
	srv := libreStandIn(t)
	lt, err := NewLibreTranslate(LibreTranslateConfig{URL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := lt.Prepare(ctx, "en", "es"); err != nil {
		t.Fatal(err)
	}
	if err := lt.Prepare(ctx, "en", "ja"); err == nil || !strings.Contains(err.Error(), "no en → ja model") {
		t.Fatalf("Prepare(en, ja) = %v", err)
	}
	if err := lt.Prepare(ctx, "de", "es"); err == nil {
		t.Fatal("Prepare(de, es) accepted a source the server does not have")
	}
	out, err := lt.Translate(ctx, "Good morning", "en", "es")
	if err != nil || out != "[es] Good morning" {
		t.Fatalf("Translate = %q, %v", out, err)
	}
	if _, err := lt.Translate(ctx, "Good morning", "en", "ja"); err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request: ja is not supported") {
		t.Fatalf("unsupported target: %v", err)
	}
	bad, _ := NewLibreTranslate(LibreTranslateConfig{URL: srv.URL, Key: "wrong"})
	if _, err := bad.Translate(ctx, "x", "en", "es"); err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden: Invalid API key") {
		t.Fatalf("wrong key: %v", err)
	}
}

// Prepare runs at every worker start; the language list is fetched once,
// and again only while fetching it fails.
func TestLibreTranslateLanguagesFetchedOnce(t *testing.T) {
	srv := libreStandIn(t)
	lt, err := NewLibreTranslate(LibreTranslateConfig{URL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "starting"})
		return true
	})
	if err := lt.Prepare(ctx, "en", "ja"); err != nil {
		t.Fatalf("Prepare without a language list = %v, want nil (assumed to exist)", err)
	}
	srv.setFail(nil)
	for range 3 {
		if err := lt.Prepare(ctx, "en", "ja"); err == nil {
			t.Fatal("Prepare(en, ja) accepted a pair the server does not have")
		}
		if err := lt.Prepare(ctx, "en", "es"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.count(); n != 2 {
		t.Errorf("%d GET /languages, want 2 (one failed, one kept)", n)
	}
}

func TestDeepLAgainstStandIn(t *testing.T) {
	srv := deeplStandIn(t)
	d, err := NewDeepL(DeepLConfig{URL: srv.URL, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for to, want := range map[string]string{"es": "[ES] Hello", "en": "[EN-US] Hello", "pt": "[PT-BR] Hello"} {
		if out, err := d.Translate(ctx, "Hello", "de", to); err != nil || out != want {
			t.Errorf("Translate to %s = %q, %v", to, out, err)
		}
	}
	if _, err := NewDeepL(DeepLConfig{}); err == nil {
		t.Error("DeepL without a key accepted")
	}
	free, _ := NewDeepL(DeepLConfig{Key: "abc:fx"})
	pro, _ := NewDeepL(DeepLConfig{Key: "abc"})
	if free.ep.url != "https://api-free.deepl.com/v2/translate" || pro.ep.url != "https://api.deepl.com/v2/translate" {
		t.Errorf("endpoints %s and %s", free.ep.url, pro.ep.url)
	}
}

func TestSpeechAgainstOpenAIStandIn(t *testing.T) {
	srv := speechStandIn(t)
	s, err := NewSpeech(SpeechConfig{URL: srv.URL + "/v1", Model: "tts-1", Voice: "alloy", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	var got []int16
	calls := 0
	if err := s.Synthesize(testCtx(t), "Hola a todos", "es", func(p []int16) { got = append(got, p...); calls++ }); err != nil {
		t.Fatal(err)
	}
	// 12 characters: 1.2 s at 24 kHz, 19200 samples at 16 kHz.
	if len(got) < 19190 || len(got) > 19210 || calls < 2 {
		t.Fatalf("%d samples in %d pieces, want 1.2 s at 16 kHz, streamed", len(got), calls)
	}
	// A server that ignores response_format and answers MP3.
	mp3 := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = w.Write([]byte("ID3\x04 not wav at all"))
	})
	s2, _ := NewSpeech(SpeechConfig{URL: mp3.URL, Model: "m", Voice: "v"})
	if err := s2.Synthesize(testCtx(t), "x", "es", func([]int16) {}); err == nil || !strings.Contains(err.Error(), `not WAV (Content-Type "audio/mpeg")`) {
		t.Fatalf("MP3 answer: %v", err)
	}
}

// stage is any of the four clients, called once.
type stage struct {
	name string
	srv  func(t *testing.T) *standIn
	ep   func(c any) *endpoint
	make func(url string) any
	call func(ctx context.Context, c any) error
}

var stages = []stage{
	{
		name: "transcriptions",
		srv:  transcriptionStandIn,
		make: func(url string) any {
			c, _ := NewTranscriptions(TranscriptionsConfig{URL: url + "/v1", Model: "whisper-1", Key: testKey})
			return c
		},
		ep: func(c any) *endpoint { return c.(*Transcriptions).ep },
		call: func(ctx context.Context, c any) error {
			_, err := c.(*Transcriptions).transcribe(ctx, tone(1600), "en")
			return err
		},
	},
	{
		name: "libretranslate",
		srv:  libreStandIn,
		make: func(url string) any {
			c, _ := NewLibreTranslate(LibreTranslateConfig{URL: url, Key: testKey})
			return c
		},
		ep: func(c any) *endpoint { return c.(*LibreTranslate).ep },
		call: func(ctx context.Context, c any) error {
			_, err := c.(*LibreTranslate).Translate(ctx, "hi", "en", "es")
			return err
		},
	},
	{
		name: "deepl",
		srv:  deeplStandIn,
		make: func(url string) any {
			c, _ := NewDeepL(DeepLConfig{URL: url, Key: testKey})
			return c
		},
		ep: func(c any) *endpoint { return c.(*DeepL).ep },
		call: func(ctx context.Context, c any) error {
			_, err := c.(*DeepL).Translate(ctx, "hi", "en", "es")
			return err
		},
	},
	{
		name: "speech",
		srv:  speechStandIn,
		make: func(url string) any {
			c, _ := NewSpeech(SpeechConfig{URL: url + "/v1", Model: "tts-1", Voice: "alloy", Key: testKey})
			return c
		},
		ep: func(c any) *endpoint { return c.(*Speech).ep },
		call: func(ctx context.Context, c any) error {
			return c.(*Speech).Synthesize(ctx, "hola", "es", func([]int16) {})
		},
	},
}

func TestFailureModes(t *testing.T) {
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			srv := st.srv(t)
			c := st.make(srv.URL)
			ep := st.ep(c)
			now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
			ep.now = func() time.Time { return now }
			ctx := testCtx(t)
			if err := st.call(ctx, c); err != nil {
				t.Fatalf("a well-formed call failed: %v", err)
			}

			// 401 whose message echoes the key: the key is redacted.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				openAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+testKey)
				return true
			})
			err := st.call(ctx, c)
			if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Incorrect API key provided: [key]") || strings.Contains(err.Error(), testKey) {
				t.Fatalf("401: %v", err)
			}

			// 5xx with an HTML body.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, "<html><body>\n<h1>502 Bad Gateway</h1>\n</body></html>")
				return true
			})
			if err := st.call(ctx, c); err == nil || !strings.Contains(err.Error(), "HTTP 502 Bad Gateway: <html><body> <h1>502 Bad Gateway</h1>") {
				t.Fatalf("502: %v", err)
			}

			// 429 with Retry-After: the server is left alone until then.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Retry-After", "30")
				writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Slowdown: 20 per 1 minute"})
				return true
			})
			if err := st.call(ctx, c); err == nil || !strings.Contains(err.Error(), "HTTP 429 Too Many Requests: Slowdown: 20 per 1 minute (retry after 30s)") {
				t.Fatalf("429: %v", err)
			}
			srv.setFail(nil)
			n := srv.count()
			if err := st.call(ctx, c); err == nil || !strings.Contains(err.Error(), ErrCoolingDown.Error()) || srv.count() != n {
				t.Fatalf("during the cool-down: %v, %d requests (was %d)", err, srv.count(), n)
			}
			now = now.Add(31 * time.Second)
			if err := st.call(ctx, c); err != nil {
				t.Fatalf("after the cool-down: %v", err)
			}

			// 503 without Retry-After: a short default cool-down.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			})
			if err := st.call(ctx, c); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
				t.Fatalf("503: %v", err)
			}
			srv.setFail(nil)
			now = now.Add(defaultCooldown)

			// A server that hangs: the context ends the call.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				// The server notices the client went only once the body
				// is read.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-time.After(wait):
				}
				return true
			})
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			err = st.call(short, c)
			cancel()
			if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
				t.Fatalf("hanging server: %v", err)
			}

			// Malformed and huge answers.
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"text": "unterminated`)
				return true
			})
			if err := st.call(ctx, c); err == nil {
				t.Fatal("malformed answer accepted")
			}
			if sp, ok := c.(*Speech); ok {
				sp.maxAudio = 64 << 10
			}
			srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/speech") {
					return false // the well-formed answer, over the lowered limit
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"text": "`+strings.Repeat("a", 2<<20)+`"}`)
				return true
			})
			err = st.call(ctx, c)
			if _, ok := c.(*Speech); ok {
				// "hola" is 0.4 s: under the limit. A long text is not.
				err = c.(*Speech).Synthesize(ctx, strings.Repeat("hola ", 20), "es", func([]int16) {})
			}
			if err == nil || !strings.Contains(err.Error(), "over") {
				t.Fatalf("huge answer: %v", err)
			}
		})
	}
}

func TestURLsAndWarnings(t *testing.T) {
	for _, bad := range []string{"ftp://x", "http://", "https://user:pass@api.example.com/v1", "::"} {
		if _, err := CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
	if w := PlainHTTPWarning("http://192.168.1.5:5000", true); !strings.Contains(w, "plain http") {
		t.Errorf("no warning for a key over http to the LAN: %q", w)
	}
	for _, ok := range []string{"http://127.0.0.1:5000", "http://localhost:8080", "https://api.openai.com/v1"} {
		if w := PlainHTTPWarning(ok, true); w != "" {
			t.Errorf("warning for %s: %q", ok, w)
		}
	}
	if w := PlainHTTPWarning("http://192.168.1.5:5000", false); w != "" {
		t.Errorf("warning without a key: %q", w)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-5":                            0,
		"soon":                          0,
		"99999999":                      maxCooldown,
		"10000000000":                   maxCooldown,
		"9223372036854775807":           maxCooldown,
		"Sun, 01 Nov 2026 10:00:45 GMT": 45 * time.Second,
		"Sun, 01 Nov 2026 09:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzParseAnswers(f *testing.F) {
	for _, s := range []string{
		`{"text": "hello"}`, `{"error": "failed to read WAV file"}`, `{"error": {"message": "x"}}`,
		`{"translatedText": "hola"}`, `{"translations": [{"text": "hola"}]}`, `{"message": "Quota exceeded"}`,
		`{"detail": [{"msg": "field required"}]}`, "<html>\x00\xff</html>", `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseTranscription(b)
		_, _ = parseLibreTranslate(b)
		_, _ = parseDeepL(b)
		msg := errorMessage(b)
		if len(msg) > maxMessage+len("…") || strings.ContainsAny(msg, "\n\r\x00") {
			t.Fatalf("error message %q", msg)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("invalid UTF-8 in %q", msg)
		}
	})
}
