package webapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/wav"
	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/processor/speech"
)

// DefaultOpenAIURL is the base URL of OpenAI's API.
const DefaultOpenAIURL = "https://api.openai.com/v1"

// maxUtterance bounds the audio kept for one utterance: the segmenter cuts
// sentences far shorter, this only guards memory.
const maxUtterance = 5 * time.Minute

// TranscriptionsConfig configures NewTranscriptions.
type TranscriptionsConfig struct {
	// URL is the API's base URL; requests go to URL + /audio/transcriptions.
	// Empty means DefaultOpenAIURL.
	URL string
	// Model is sent as "model": whisper-1 at OpenAI,
	// whisper-large-v3-turbo at Groq, the model name at a faster-whisper
	// server; whisper.cpp ignores it.
	Model string
	// Key is sent as "Authorization: Bearer KEY"; empty sends none (a
	// local server).
	Key string
	// Interim, when positive, transcribes the sentence so far every
	// Interim of new speech while it is spoken, for interim transcripts.
	// Each costs a request (and at a paid API, money); 0 sends one
	// request per sentence.
	Interim time.Duration
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// Transcriptions is a speech.Recognizer that sends each sentence, as a WAV
// file, to an OpenAI-compatible transcription endpoint:
//
//	POST {URL}/audio/transcriptions
//	Authorization: Bearer KEY
//	Content-Type: multipart/form-data
//	  file=@speech.wav (audio/wav), model, language (ISO 639-1),
//	  response_format=json, temperature=0
//	→ 200 {"text": "..."}
//
// The shape is OpenAI's (whisper-1, gpt-4o-transcribe), also served by Groq,
// LocalAI, faster-whisper servers (Speaches) and whisper.cpp's whisper-server
// (run it with --inference-path /v1/audio/transcriptions; it answers errors
// with 200 and {"error": "..."}, which is read as the error it is).
type Transcriptions struct {
	ep      *endpoint
	model   string
	interim time.Duration
}

// NewTranscriptions checks c.
func NewTranscriptions(c TranscriptionsConfig) (*Transcriptions, error) {
	if c.URL == "" {
		c.URL = DefaultOpenAIURL
	}
	ep, err := newEndpoint("transcription API", c.URL, "/audio/transcriptions", c.Key, c.Client)
	if err != nil {
		return nil, err
	}
	return &Transcriptions{ep: ep, model: c.Model, interim: c.Interim}, nil
}

// Open implements speech.Recognizer. Whisper models are multilingual: every
// language is accepted, and the server says if it is not.
func (t *Transcriptions) Open(ctx context.Context, lang string) (speech.Recognition, error) {
	return &transcription{t: t, ctx: ctx, lang: lang}, nil
}

type transcription struct {
	t    *Transcriptions
	ctx  context.Context
	lang string
}

func (r *transcription) Begin(partial func(string)) (speech.Utterance, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	return &utterance{r: r, ctx: ctx, cancel: cancel, partial: partial}, nil
}

func (r *transcription) Close() error { return nil }

type utterance struct {
	r       *transcription
	ctx     context.Context // ends at End: interim requests stop
	cancel  context.CancelFunc
	partial func(string)
	pcm     []int16

	lastInterim int // len(pcm) at the last interim request
	inFlight    bool
	wg          sync.WaitGroup
	mu          sync.Mutex // guards inFlight
}

func (u *utterance) Write(pcm []int16) error {
	if len(u.pcm)+len(pcm) > int(maxUtterance.Seconds())*processor.SampleRate {
		return errors.New("transcription: utterance too long")
	}
	u.pcm = append(u.pcm, pcm...)
	iv := int(u.r.t.interim.Seconds() * processor.SampleRate)
	if iv <= 0 || u.partial == nil || len(u.pcm)-u.lastInterim < iv {
		return nil
	}
	u.mu.Lock()
	busy := u.inFlight
	u.inFlight = !busy
	u.mu.Unlock()
	if busy {
		return nil
	}
	u.lastInterim = len(u.pcm)
	snapshot := append([]int16(nil), u.pcm...)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		text, err := u.r.t.transcribe(u.ctx, snapshot, u.r.lang)
		u.mu.Lock()
		u.inFlight = false
		u.mu.Unlock()
		if err == nil && text != "" && u.ctx.Err() == nil {
			u.partial(text)
		}
	}()
	return nil
}

func (u *utterance) End(ctx context.Context) (string, error) {
	u.cancel() // interim requests are moot now
	u.wg.Wait()
	if len(u.pcm) == 0 {
		return "", nil
	}
	return u.r.t.transcribe(ctx, u.pcm, u.r.lang)
}

func (t *Transcriptions) transcribe(ctx context.Context, pcm []int16, lang string) (string, error) {
	file, err := wav.Encode(speech.PCMBytes(pcm), processor.SampleRate, 1)
	if err != nil {
		return "", err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="speech.wav"`)
	h.Set("Content-Type", "audio/wav")
	fw, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	_, _ = fw.Write(file)
	for _, f := range [][2]string{{"model", t.model}, {"language", lang}, {"response_format", "json"}, {"temperature", "0"}} {
		if f[1] != "" {
			_ = mw.WriteField(f[0], f[1])
		}
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	header := http.Header{}
	if t.ep.key != "" {
		header.Set("Authorization", "Bearer "+t.ep.key)
	}
	return t.ep.postJSON(ctx, mw.FormDataContentType(), body.Bytes(), header, parseTranscription)
}

// parseTranscription reads {"text": "..."}, and the error a server put in a
// 200 answer ({"error": ...}, whisper.cpp).
func parseTranscription(b []byte) (string, error) {
	var m struct {
		Text  *string         `json:"text"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("malformed answer: %w", err)
	}
	if msg := rawMessage(m.Error); msg != "" || (len(m.Error) > 0 && string(m.Error) != "null") {
		if msg == "" {
			msg = "unspecified error"
		}
		return "", fmt.Errorf("the server answered an error: %s", clean(msg))
	}
	if m.Text == nil {
		return "", errors.New("malformed answer: no \"text\"")
	}
	return *m.Text, nil
}
