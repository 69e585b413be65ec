package webapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/pentecost/pentecost/processor/speech"
)

// SpeechConfig configures NewSpeech.
type SpeechConfig struct {
	// URL is the API's base URL; requests go to URL + /audio/speech. Empty
	// means DefaultOpenAIURL.
	URL string
	// Model is sent as "model": tts-1 or gpt-4o-mini-tts at OpenAI; what
	// a local server expects (kokoro, tts-1 at openedai-speech).
	Model string
	// Voice is sent as "voice" for every language without an entry in
	// Voices. OpenAI's voices (alloy, nova ...) speak every language;
	// Piper-based servers name language-specific voices
	// (es_ES-davefx-medium), which Voices maps per language.
	Voice  string
	Voices map[string]string
	// Key is sent as "Authorization: Bearer KEY"; empty sends none.
	Key string
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// Speech is a speech.Synthesizer for an OpenAI-compatible speech endpoint:
//
//	POST {URL}/audio/speech
//	Authorization: Bearer KEY
//	Content-Type: application/json
//	{"model": "tts-1", "input": "...", "voice": "alloy", "response_format": "wav"}
//	→ 200 audio/wav (16-bit PCM at the voice's rate, often streamed with
//	  unknown sizes in the header)
//
// The shape is OpenAI's, also served by openedai-speech (Piper and Coqui
// voices), Kokoro-FastAPI and LocalAI. WAV is asked for because it needs no
// decoder; a server that answers another format is reported. The audio is
// converted to 16 kHz as it streams in, so a listener hears the start of a
// sentence before the server has finished it.
type Speech struct {
	ep       *endpoint
	maxAudio int64
	model    string
	voice    string
	voices   map[string]string
}

// NewSpeech checks c.
func NewSpeech(c SpeechConfig) (*Speech, error) {
	if c.URL == "" {
		c.URL = DefaultOpenAIURL
	}
	ep, err := newEndpoint("speech API", c.URL, "/audio/speech", c.Key, c.Client)
	if err != nil {
		return nil, err
	}
	return &Speech{ep: ep, maxAudio: maxAudioResponse, model: c.Model, voice: c.Voice, voices: c.Voices}, nil
}

// Prepare implements speech.Synthesizer; whether the server speaks a
// language shows at its first sentence.
func (s *Speech) Prepare(ctx context.Context, lang string) error { return nil }

// Synthesize implements speech.Synthesizer.
func (s *Speech) Synthesize(ctx context.Context, text, lang string, emit func([]int16)) error {
	voice := s.voice
	if v := s.voices[lang]; v != "" {
		voice = v
	}
	// No cut to OpenAI's 4096-character limit on "input": the pipeline
	// speaks captions, which are at most processor.MaxCaptionBytes.
	body, err := json.Marshal(map[string]string{"model": s.model, "input": text, "voice": voice, "response_format": "wav"})
	if err != nil {
		return err
	}
	header := http.Header{"Accept": {"audio/wav"}}
	if s.ep.key != "" {
		header.Set("Authorization", "Bearer "+s.ep.key)
	}
	resp, err := s.ep.post(ctx, "application/json", body, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReader(&limitedReader{r: resp.Body, n: s.maxAudio, max: s.maxAudio})
	if magic, _ := r.Peek(4); string(magic) != "RIFF" {
		return fmt.Errorf("%s: the answer is not WAV (Content-Type %q): the server must support response_format \"wav\"",
			s.ep.name, clean(resp.Header.Get("Content-Type")))
	}
	if err := speech.DecodeWAV(r, emit); err != nil {
		return fmt.Errorf("%s: %w", s.ep.name, s.ep.redactErr(err))
	}
	return nil
}

// limitedReader fails, rather than ending quietly, past n bytes: a
// truncated sentence must not pass for a whole one.
type limitedReader struct {
	r      io.Reader
	n, max int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("audio answer over %d bytes", l.max)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
