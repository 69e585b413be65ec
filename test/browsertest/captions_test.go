package browsertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pentecost/pentecost/processor"
)

// captioner is a translation engine for the tests: it passes the audio
// through and captions every fifth chunk, interim ("línea 3…"), and with
// finals on, every tenth as a final line.
type captioner struct{ finals atomic.Bool }

func (c *captioner) Start(_ context.Context, _ processor.Stream, out processor.Output) (processor.Worker, error) {
	n := 0
	return processor.WorkerFunc(func(ch processor.Chunk) error {
		out.Audio(ch.Data)
		n++
		switch {
		case n%10 == 0 && c.finals.Load():
			out.Caption(fmt.Sprintf("línea %d.", n/10), true)
		case n%5 == 0:
			out.Caption(fmt.Sprintf("línea %d…", n/10+1), false)
		}
		return nil
	}), nil
}

// TestBrowserCaptions: translated captions fill the panel (finals as lines
// of a polite live log, the interim line under them); the text size
// control works and is remembered; muting clears the interim caption; when
// the translation stops and the listener falls back to the original audio,
// the captions clear.
func TestBrowserCaptions(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")
	es := listenerAt(t, b, n.url, "listener-es", id, "es", asPhone)
	waitPlaying(es, stats{}, 15*time.Second)

	capt := &captioner{}
	capt.finals.Store(true)
	stop := runProcessor(t, n, processor.Options{Languages: []string{"es"}, Translator: capt})

	es.waitStats("translated captions", 15*time.Second, func(s stats) bool {
		return s["untranslated"] == false && s.num("captionLines") >= 2
	})
	if got := eval[[]string](es, `(() => { const l = document.getElementById('caption-log');
		return [l.getAttribute('role'), l.getAttribute('aria-live'), String(document.getElementById('captions').hidden)]; })()`); fmt.Sprint(got) != "[log polite false]" {
		t.Errorf("caption log role, aria-live, hidden = %v, want log, polite, false", got)
	}
	if txt := eval[string](es, "document.getElementById('caption-log').lastElementChild.textContent"); txt == "" {
		t.Error("an empty caption line")
	}
	// The language picker now lists Spanish among what is served.
	es.waitJS(`[...document.querySelectorAll('#player-language optgroup:first-child option')].some((o) => o.value === 'es')`, 10*time.Second)

	// Text size: larger, remembered.
	size := func() float64 {
		return eval[float64](es, "parseFloat(getComputedStyle(document.getElementById('caption-log')).fontSize)")
	}
	before := size()
	es.click("caption-larger")
	es.click("caption-larger")
	if after := size(); after <= before {
		t.Errorf("text size %v px after A+ twice, was %v", after, before)
	}
	if v := eval[string](es, "localStorage.getItem('pentecost.captionSize')"); v != "3" {
		t.Errorf("caption size not remembered: %q", v)
	}

	// Interim captions only: a live line stays; muting clears it.
	capt.finals.Store(false)
	es.waitStats("an interim caption", 10*time.Second, func(s stats) bool { return s.str("captionLive") != "" })
	lines := es.stats().num("captionLines")
	sp.click("mute")
	es.waitStats("muted, live caption cleared", 10*time.Second, func(s stats) bool {
		return s.str("state") == "muted" && s.str("captionLive") == ""
	})
	if got := es.text("caption-live"); got != "" {
		t.Errorf("the interim caption still shows while muted: %q", got)
	}
	if got := es.stats().num("captionLines"); got != lines {
		t.Errorf("muting changed the transcript: %v lines, was %v", got, lines)
	}
	sp.click("mute")
	es.waitStats("captions again", 10*time.Second, func(s stats) bool { return s.str("state") == "live" && s.str("captionLive") != "" })

	// The translation stops: back to the original, captions cleared.
	stop()
	es.waitStats("the original audio", 15*time.Second, func(s stats) bool { return s["untranslated"] == true })
	s := es.waitStats("captions cleared", 5*time.Second, func(s stats) bool {
		return s.num("captionLines") == 0 && s.str("captionLive") == ""
	})
	if got := es.text("caption-log") + es.text("caption-live"); got != "" {
		t.Errorf("captions still shown after the fallback to the original: %q (stats %v)", got, s)
	}
	waitPlaying(es, es.stats(), 10*time.Second)
	checkClean(t, sp, es)
}
