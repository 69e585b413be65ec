package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
)

func TestParseProcessorSpeech(t *testing.T) {
	env := map[string]string{envASRKey: "asr-secret", envMTKey: "mt-secret"}
	getenv := func(k string) string { return env[k] }
	c, err := parseProcessor([]string{"--mode", "speech"}, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.mode != "speech" || c.speech.asr != "pocketsphinx" || c.speech.mt != "apertium" || c.speech.tts != "espeak" || c.speech.pause != 500*time.Millisecond {
		t.Errorf("speech defaults %+v", c.speech)
	}
	// Any speech flag selects the mode; keys come from the environment.
	c, err = parseProcessor([]string{"--asr", "openai", "--mt", "deepl", "--tts", "none"}, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.mode != "speech" || c.speech.asrKey != "asr-secret" || c.speech.mtKey != "mt-secret" || c.speech.ttsKey != "" {
		t.Errorf("--asr openai: %+v", c)
	}
	for _, bad := range [][]string{
		{"--asr-url", "http://x"},                       // for --asr openai
		{"--asr", "vosk"},                               // unknown
		{"--mt", "libretranslate"},                      // needs --mt-url
		{"--mt", "apertium", "--mt-url", "http://x"},    // not for apertium
		{"--tts", "none", "--tts-voice", "alloy"},       // nothing to voice
		{"--mode", "tone", "--asr", "openai"},           // speech flag, other mode
		{"--exec", "cat", "--tts", "none"},              // two modes
		{"--pause", "50ms"},                             // too short
		{"--pause", "2s", "--max-sentence", "1s"},       // pause over the maximum
		{"--tts-voice", "alloy,nova"},                   // two defaults
		{"--tts-voice", "es="},                          // no voice
		{"--asr", "openai", "--stage-timeout", "-1s"},   // negative
		{"--mt", "deepl", "--mt-url", "https://x.test"}, // DeepL without its key
		{"--mt", "none", "--tts", "espeak"},             // nothing to speak
	} {
		if bad[1] == "deepl" {
			delete(env, envMTKey)
		}
		if _, err := parseProcessor(bad, getenv, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
		env[envMTKey] = "mt-secret"
	}
	if c, err := parseProcessor([]string{"--mt", "none"}, getenv, &bytes.Buffer{}); err != nil || c.speech.tts != "none" {
		t.Errorf("--mt none: tts %q, %v", c.speech.tts, err)
	}
	var help bytes.Buffer
	_, _ = parseProcessor([]string{"-h"}, getenv, &help)
	if strings.Contains(help.String(), "secret") || !strings.Contains(help.String(), "--mode speech") {
		t.Errorf("help output:\n%s", help.String())
	}
}

func TestParseVoices(t *testing.T) {
	def, per, err := parseVoices("alloy, es=es_ES-davefx-medium ,FR=fr_FR-siwis-medium")
	if err != nil || def != "alloy" || per["es"] != "es_ES-davefx-medium" || per["fr"] != "fr_FR-siwis-medium" {
		t.Errorf("parseVoices = %q %v %v", def, per, err)
	}
	if def, per, err := parseVoices(""); def != "" || len(per) != 0 || err != nil {
		t.Errorf("empty: %q %v %v", def, per, err)
	}
}

// speakSentence sends a second of speech (a tone will do: the recognizer
// is a stand-in) and the pause that ends it, paced as a speaker sends it:
// sent all at once, it overflows the processor's worker queue on a busy
// machine (it drops the oldest source audio, as it should) and no sentence
// is left to recognize.
func speakSentence(t *testing.T, sp *client.Conn) {
	t.Helper()
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for i := range 100 {
		<-pace.C
		b := make([]byte, 640)
		for j := 0; i < 50 && j < 320; j++ {
			binary.LittleEndian.PutUint16(b[2*j:], uint16(int16(8000*math.Sin(2*math.Pi*300*float64(j)/16000))))
		}
		if err := sp.SendBinary(cliTestCtx(t), b); err != nil {
			t.Fatal(err)
		}
	}
}

// standInASR stands in for an OpenAI-compatible transcription API that
// hears "Good morning." in anything, given key.
func standInASR(t *testing.T, key string) *httptest.Server {
	asr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"text": "Good morning."})
	}))
	t.Cleanup(asr.Close)
	return asr
}

// standInMT stands in for LibreTranslate, translating into Spanish only
// ("Buenos días."), given key.
func standInMT(t *testing.T, key string) *httptest.Server {
	mt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		if r.URL.Path == "/languages" {
			_ = json.NewEncoder(w).Encode([]map[string]any{{"code": "en", "targets": []string{"es"}}})
			return
		}
		if req["api_key"] != key {
			http.Error(w, `{"error":"Invalid API key"}`, http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"translatedText": "Buenos días."})
	}))
	t.Cleanup(mt.Close)
	return mt
}

// The speech mode on the command line, with its stages on stand-ins for
// an OpenAI-compatible transcription API, LibreTranslate and an
// OpenAI-compatible speech API that fails: a Spanish listener gets the
// translated caption, the keys appear nowhere in the output.
func TestRunProcessorSpeechOverHTTPStandIns(t *testing.T) {
	const asrKey, mtKey, ttsKey = "sk-asr-0123456789", "lt-key-0123456789", "sk-tts-0123456789"
	asr, mt := standInASR(t, asrKey), standInMT(t, mtKey)
	tts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"Incorrect API key provided: `+r.Header.Get("Authorization")+`"}}`, http.StatusUnauthorized)
	}))
	defer tts.Close()
	t.Setenv(envASRKey, asrKey)
	t.Setenv(envMTKey, mtKey)
	t.Setenv(envTTSKey, ttsKey)

	r := startProcessorRun(t, "--languages", "es",
		"--asr", "openai", "--asr-url", asr.URL+"/v1",
		"--mt", "libretranslate", "--mt-url", mt.URL,
		"--tts", "openai", "--tts-url", tts.URL+"/v1")
	li, joined := r.listen("es")
	awaitTranslated(t, li, joined)
	speakSentence(t, r.speaker)
	for {
		ev, err := li.Next(cliTestCtx(t))
		if err != nil {
			t.Fatalf("waiting for the caption: %v", err)
		}
		if ev.Type == "caption" {
			if ev.String("text") != "Buenos días." || ev.String("targetLanguage") != "es" || !ev.Bool("final") {
				t.Fatalf("caption %v", ev.JSON)
			}
			break
		}
	}
	// The synthesis runs after the caption; its failure is logged.
	r.waitLog("speech synthesis of sentence 0 failed")
	out := r.stop()
	for _, s := range []string{
		"mode speech: recognition whisper-1 at " + asr.URL + "/v1 (key from PENTECOST_ASR_KEY)",
		"translation LibreTranslate at " + mt.URL + " (key from PENTECOST_MT_KEY)",
		"es speech synthesis of sentence 0 failed: speech API: HTTP 401 Unauthorized: Incorrect API key provided: Bearer [key]",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	for _, k := range []string{asrKey, mtKey, ttsKey} {
		if strings.Contains(out, k) {
			t.Errorf("stderr shows the key %q", k)
		}
	}
}
