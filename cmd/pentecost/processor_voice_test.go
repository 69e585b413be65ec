package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pentecost/pentecost/client"
)

// voices is a synthesizer with a voice for the languages it holds.
type voices map[string]bool

func (v voices) Prepare(_ context.Context, lang string) error {
	if !v[lang] {
		return errors.New("no such voice")
	}
	return nil
}

func (v voices) Synthesize(context.Context, string, string, func([]int16)) error { return nil }

// The speech mode tells the server which languages get a voice.
func TestSpeechAudioParameter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      speechSetup
		langs      []string
		want       string
		logMissing string
	}{
		{"--mt none: the source passes through", speechSetup{translates: false}, []string{"es"}, "all", ""},
		{"--tts none: captions only", speechSetup{translates: true}, []string{"es", "fr"}, "none", ""},
		{"every language served: cannot know", speechSetup{translates: true, synth: voices{"es": true}}, nil, "all", ""},
		{"a voice for each", speechSetup{translates: true, synth: voices{"es": true, "fr": true}}, []string{"es", "fr"}, "all", ""},
		{"a voice for some", speechSetup{translates: true, synth: voices{"es": true}}, []string{"es", "fr"}, "[es]", "no fr voice"},
		{"a voice for none", speechSetup{translates: true, synth: voices{}}, []string{"fr"}, "none", "no fr voice"},
	} {
		var log bytes.Buffer
		none, audio := tc.setup.audio(context.Background(), tc.langs, func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) })
		got := "all"
		switch {
		case none:
			got = "none"
		case audio != nil:
			got = fmt.Sprint(audio)
		}
		if got != tc.want {
			t.Errorf("%s: audio %s, want %s", tc.name, got, tc.want)
		}
		if tc.logMissing != "" && !strings.Contains(log.String(), tc.logMissing) {
			t.Errorf("%s: the log does not say %q:\n%s", tc.name, tc.logMissing, log.String())
		}
	}
}

// --tts none on the command line: the processor attaches captions only, so
// the Spanish listener keeps hearing the speaker (source frames) and gets
// the translated caption, told translated false and captions true.
func TestRunProcessorSpeechCaptionsOnly(t *testing.T) {
	const asrKey, mtKey = "sk-asr-0123456789", "lt-key-0123456789"
	asr, mt := standInASR(t, asrKey), standInMT(t, mtKey)
	t.Setenv(envASRKey, asrKey)
	t.Setenv(envMTKey, mtKey)

	r := startProcessorRun(t, "--languages", "es",
		"--asr", "openai", "--asr-url", asr.URL+"/v1", "--mt", "libretranslate", "--mt-url", mt.URL, "--tts", "none")
	// Wait for the processor, so that the listener's join is served.
	r.waitLog("attached to")
	li, joined := r.listen("es")
	if joined.Bool("translated") || !joined.Bool("captions") {
		t.Fatalf("sessionJoined %v: want translated false, captions true", joined.JSON)
	}
	speakSentence(t, r.speaker)
	ev, heard := untilCaption(t, li, false)
	if ev.String("text") != "Buenos días." || !ev.Bool("final") {
		t.Fatalf("caption %v", ev.JSON)
	}
	if heard == 0 {
		t.Error("the listener heard nothing of the speaker before the caption")
	}
	if out := r.stop(); !strings.Contains(out, "audio none (captions only)") || !strings.Contains(out, "audio: none") {
		t.Errorf("the log does not say captions only:\n%s", out)
	}
}

// The speech mode publishes the transcript by default: in a room where
// everyone listens in the speaker's language (no translation wanted at
// all), the English listener is told captions are there, gets the
// transcript, and keeps the speaker's voice.
func TestRunProcessorSpeechTranscriptForAnEnglishRoom(t *testing.T) {
	const asrKey, mtKey = "sk-asr-0123456789", "lt-key-0123456789"
	asr, mt := standInASR(t, asrKey), standInMT(t, mtKey)
	t.Setenv(envASRKey, asrKey)
	t.Setenv(envMTKey, mtKey)

	r := startProcessorRun(t, "--languages", "en,es",
		"--asr", "openai", "--asr-url", asr.URL+"/v1", "--mt", "libretranslate", "--mt-url", mt.URL, "--tts", "none")
	// Wait for the processor, so that the listener's join is served.
	r.waitLog("attached to")
	li, joined := r.listen("en")
	if !joined.Bool("translated") || !joined.Bool("captions") {
		t.Fatalf("sessionJoined %v: want translated (the speaker) and captions (the transcript)", joined.JSON)
	}
	// The transcript worker runs before the speech starts.
	r.waitLog("starting en worker (the transcript")
	speakSentence(t, r.speaker)
	ev, heard := untilCaption(t, li, true)
	if ev.String("text") != "Good morning." || ev.String("targetLanguage") != "en" {
		t.Fatalf("transcript %v", ev.JSON)
	}
	if heard == 0 {
		t.Error("the listener heard nothing of the speaker")
	}
	if out := r.stop(); !strings.Contains(out, "transcript yes") || !strings.Contains(out, ", transcript)") {
		t.Errorf("the log does not say it transcribes:\n%s", out)
	}
}

// untilCaption reads li until a caption (with final, until a final one),
// which it returns with the number of audio frames heard before it. Every
// frame must be the speaker's own (kind 0): the listener's language gets no
// translated audio in these tests.
func untilCaption(t *testing.T, li *client.Conn, final bool) (client.Event, int) {
	t.Helper()
	heard := 0
	for {
		ev, err := li.Next(cliTestCtx(t))
		if err != nil {
			t.Fatalf("waiting for the caption: %v", err)
		}
		if ev.Audio != nil {
			if ev.Audio.Header.Kind != 0 {
				t.Fatalf("audio of kind %d (translated) where only the speaker's is wanted", ev.Audio.Header.Kind)
			}
			heard++
		}
		if ev.Type == "caption" && (!final || ev.Bool("final")) {
			return ev, heard
		}
	}
}
