package webapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/processor/speech"
)

// recorder is a processor.Output that keeps what a worker publishes.
type recorder struct {
	mu          sync.Mutex
	captions    []string
	transcripts []string
	loud        int // published audio samples that are not silence
}

func (r *recorder) Audio(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i+1 < len(b); i += 2 {
		if binary.LittleEndian.Uint16(b[i:]) != 0 {
			r.loud++
		}
	}
}

func (r *recorder) Caption(text string, final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.captions = append(r.captions, text)
}

func (r *recorder) Transcript(text string, final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if final {
		r.transcripts = append(r.transcripts, text)
	}
}

func (r *recorder) Logf(string, ...any) {}

func (r *recorder) snapshot() (captions, transcripts []string, loud int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.captions...), append([]string(nil), r.transcripts...), r.loud
}

// chunks makes n sentences of 1 s of tone and 1 s of silence, as 20 ms
// pcm16 chunks numbered from seq.
func chunks(seq *uint32, n int) []processor.Chunk {
	var out []processor.Chunk
	for s := range n {
		_ = s
		for i := range 100 {
			b := make([]byte, 640)
			if i < 50 {
				for j := range 320 {
					v := int16(8000 * math.Sin(2*math.Pi*300*float64(j)/16000))
					binary.LittleEndian.PutUint16(b[2*j:], uint16(v))
				}
			}
			out = append(out, processor.Chunk{Data: b, Sequence: *seq, Ingest: time.Now()})
			*seq++
		}
	}
	return out
}

// TestPipelineOverHTTPStandIns runs the speech pipeline on the HTTP stages
// against stand-ins, with French translation and speech synthesis failing
// throughout: Spanish captions keep flowing, French and the voice fail
// alone, and the pipeline says so in its log. (A 429 would make the
// translator leave the server alone for every language, as it should: the
// limit is the client's.)
func TestPipelineOverHTTPStandIns(t *testing.T) {
	asrSrv, ltSrv, ttsSrv := transcriptionStandIn(t), libreStandIn(t), speechStandIn(t)
	ltSrv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/translate" && strings.Contains(readBody(r), `"target":"fr"`) {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Cannot translate text: model crashed"})
			return true
		}
		return false
	})
	ttsSrv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		openAIError(w, http.StatusInternalServerError, "The server had an error while processing your request.")
		return true
	})
	asr, _ := NewTranscriptions(TranscriptionsConfig{URL: asrSrv.URL + "/v1", Model: "whisper-1", Key: testKey})
	lt, _ := NewLibreTranslate(LibreTranslateConfig{URL: ltSrv.URL, Key: testKey})
	tts, _ := NewSpeech(SpeechConfig{URL: ttsSrv.URL + "/v1", Model: "tts-1", Voice: "alloy", Key: testKey})
	var logMu sync.Mutex
	var logs []string
	p, err := speech.New(speech.Options{
		Recognizer: asr, Translator: lt, Synthesizer: tts,
		Logf: func(f string, a ...any) {
			logMu.Lock()
			logs = append(logs, fmt.Sprintf(f, a...))
			logMu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	es, fr := &recorder{}, &recorder{}
	stream := processor.Stream{SessionID: "golden-eagle-427", SourceLanguage: "en", Format: "pcm16", Audio: true}
	stream.Language = "es"
	wes, _ := p.Start(context.Background(), stream, es)
	stream.Language = "fr"
	wfr, _ := p.Start(context.Background(), stream, fr)
	defer wes.Close()
	defer wfr.Close()
	var seq uint32
	for _, c := range chunks(&seq, 3) {
		_ = wes.Process(c)
		_ = wfr.Process(c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		captions, transcripts, loud := es.snapshot()
		if len(captions) == 3 {
			for i, c := range captions {
				if !strings.HasPrefix(c, "[es] Heard 1.") {
					t.Errorf("es caption %d = %q", i, c)
				}
			}
			if len(transcripts) != 3 || loud != 0 {
				t.Errorf("transcripts %q, %d loud samples from a failing synthesizer", transcripts, loud)
			}
			break
		}
		if time.Now().After(deadline) {
			logMu.Lock()
			t.Fatalf("es captions %q; log:\n%s", captions, strings.Join(logs, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if captions, _, _ := fr.snapshot(); len(captions) != 0 {
		t.Errorf("fr captions %q from a failing translator", captions)
	}
	// The failures are logged by the languages' own goroutines: wait.
	var all string
	for _, want := range []string{
		"fr translation of sentence 0 failed: LibreTranslate: HTTP 500 Internal Server Error: Cannot translate text: model crashed",
		"es speech synthesis of sentence 0 failed: speech API: HTTP 500 Internal Server Error: The server had an error while processing your request.",
	} {
		for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
			logMu.Lock()
			all = strings.Join(logs, "\n")
			logMu.Unlock()
			if strings.Contains(all, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line %q in\n%s", want, all)
			}
		}
	}
	if strings.Contains(all, testKey) {
		t.Error("a log line holds the key")
	}
}

func readBody(r *http.Request) string {
	b := make([]byte, 4096)
	n, _ := r.Body.Read(b)
	r.Body = readCloser{strings.NewReader(string(b[:n])), r.Body}
	return string(b[:n])
}

type readCloser struct {
	*strings.Reader
	orig interface{ Close() error }
}

func (r readCloser) Close() error { return r.orig.Close() }
