package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/processor"
)

// TestBrowserTranscript: an English room (a deaf member following the
// sermon as text) with a transcript processor and nobody listening in any
// other language. The English listener, on a phone on the room's Wi-Fi,
// hears the speaker and gets the panel, labelled as the transcript, with
// its polite live log and text size control; the picker says the original
// has a transcript; the phone's voice is not offered (it would repeat the
// speaker), "transcript only" is, and stops the audio while the lines keep
// coming. When the transcript processor goes, the listener is told, and the
// lines already shown stay: they are still what was said.
func TestBrowserTranscript(t *testing.T) {
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")
	stop := runProcessor(t, n, processor.Options{Languages: []string{"en"}, Transcript: true, Translator: &sentences{word: "Amen"}})

	// An English voice exists on this "phone": it is still not offered.
	en := listenerAt(t, b, roomURL(n), "listener-en", id, "en", asPhone,
		injectScript(fakeSpeech(`[{name: 'Test English', lang: 'en-US'}]`)))
	waitPlaying(en, stats{}, 15*time.Second)
	s := en.waitStats("the transcript over the speaker", 15*time.Second, func(s stats) bool {
		return s["captionsServed"] == true && s.num("captionLines") >= 2 && s.str("captionsKind") == "transcript"
	})
	if s.num("lastKind") != 0 || s["untranslated"] != false || s["voiceOffered"] != false {
		t.Errorf("stats %v: want the speaker's audio (kind 0), not marked untranslated, no phone voice", s)
	}
	if got := en.text("captions-title"); got != "Transcript" {
		t.Errorf("panel title %q, want Transcript", got)
	}
	if got := eval[[]string](en, `(() => { const l = document.getElementById('caption-log');
		return [l.getAttribute('role'), l.getAttribute('aria-live'), document.getElementById(l.getAttribute('aria-labelledby')).textContent]; })()`); strings.Join(got, "|") != "log|polite|Transcript" {
		t.Errorf("caption log role, aria-live, name = %v, want log, polite, Transcript", got)
	}
	for _, line := range captionLines(en) {
		if !strings.HasPrefix(line, "Amen ") {
			t.Errorf("transcript line %q", line)
		}
	}
	if !eval[bool](en, "document.getElementById('mode-voice-field').hidden") {
		t.Error("the phone's voice is offered for the source language")
	}
	if eval[bool](en, "document.getElementById('mode-field').hidden") {
		t.Fatal("no choice of how to follow for a listener with a transcript")
	}
	if got := eval[string](en, `document.querySelector('label[for="mode-text"]').textContent`); got != "Transcript only" {
		t.Errorf("text mode label %q", got)
	}
	en.waitJS(`[...document.querySelectorAll('#player-language optgroup:first-child option')].some((o) => o.value === 'en' && o.textContent.includes('with transcript'))`, 10*time.Second)
	checkLabels(t, en)

	// The text size control works here too.
	size := func() float64 {
		return eval[float64](en, "parseFloat(getComputedStyle(document.getElementById('caption-log')).fontSize)")
	}
	before := size()
	en.click("caption-larger")
	if after := size(); after <= before {
		t.Errorf("text size %v px after A+, was %v", after, before)
	}

	// Transcript only: the audio stops, the lines keep coming.
	acks := en.stats().num("playbackPausedAcks")
	chooseMode(en, "text")
	en.waitStats("transcript only", 5*time.Second, func(s stats) bool { return s.str("listenMode") == "text" })
	// The server acknowledges pausePlayback after the last audio it sends.
	en.waitStats("the server's playbackPaused", 5*time.Second, func(s stats) bool { return s.num("playbackPausedAcks") > acks })
	f0, c0 := en.stats().num("framesReceived"), en.stats().num("captionLines")
	s = en.waitStats("lines, no audio", 10*time.Second, func(s stats) bool { return s.num("captionLines") >= c0+3 || c0 >= 190 })
	if s.num("framesReceived") != f0 {
		t.Errorf("%v audio frames arrived in transcript-only mode", s.num("framesReceived")-f0)
	}
	if got := en.text("mode-badge"); got != "Transcript only · no sound" {
		t.Errorf("mode badge %q", got)
	}
	if got := en.text("status-detail"); got != "Transcript only: no sound is played." {
		t.Errorf("status detail %q", got)
	}
	if l := said(en); len(l.Spoken) > 0 {
		t.Errorf("the phone spoke the transcript: %+v", l.Spoken)
	}
	src := axeSource(t)
	bothSchemes(en, func(sc string) { checkAxe(t, en, src, "transcript only, "+sc) })
	chooseMode(en, "audio")
	waitPlaying(en, en.stats(), 10*time.Second)
	bothSchemes(en, func(sc string) { checkAxe(t, en, src, "transcript, "+sc) })

	// The transcript processor goes: told, the lines stay.
	lines := en.stats().num("captionLines")
	stop()
	s = en.waitStats("no transcript", 15*time.Second, func(s stats) bool { return s["captionsServed"] == false })
	if s.num("captionLines") < lines {
		t.Errorf("%v transcript lines after the processor left, were %v: the lines shown are still what was said", s.num("captionLines"), lines)
	}
	waitPlaying(en, en.stats(), 10*time.Second)
	checkClean(t, sp, en)
}
