package browsertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axe-core, vendored under testdata/axe-core (its README says why and how
// to update it).
const (
	axeVersion = "4.14.1"
	axeSHA256  = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
)

func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/axe-core/axe.min.js")
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != axeSHA256 {
		t.Fatalf("testdata/axe-core/axe.min.js is not axe-core %s as vendored", axeVersion)
	}
	return string(b)
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAxe runs axe-core's WCAG 2.1 A and AA rules on the page as it is now
// (injected through the DevTools protocol, which the page's CSP does not
// govern) and reports every violation.
func checkAxe(t *testing.T, p *page, src, what string) {
	t.Helper()
	if !eval[bool](p, "typeof window.axe === 'object'") {
		eval[bool](p, src+";true")
	}
	// Let styles and transitions settle before measuring colours.
	eval[bool](p, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise)
	vs := eval[[]axeViolation](p, `axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
		resultTypes: ['violations'],
	}).then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
		nodes: v.nodes.map((n) => ({target: n.target, failureSummary: n.failureSummary}))})))`, chromedp.EvalAwaitPromise)
	for _, v := range vs {
		var nodes []string
		for _, n := range v.Nodes {
			nodes = append(nodes, fmt.Sprintf("%v: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " ")))
		}
		t.Errorf("axe %s, %s: %s (%s): %s", p.name, what, v.ID, v.Impact, strings.Join(nodes, "; "))
	}
}

// bothSchemes runs f in the light, then the dark colour scheme.
func bothSchemes(p *page, f func(scheme string)) {
	for _, dark := range []bool{false, true} {
		p.do(emulateScheme(dark))
		if dark {
			f("dark")
		} else {
			f("light")
		}
	}
	p.do(emulateScheme(false))
}

// contrastOf computes the WCAG contrast ratio of an element's text against
// its own background colour (the buttons here paint their own).
func contrastOf(p *page, id string) float64 {
	return eval[float64](p, fmt.Sprintf(`(() => {
		const el = document.getElementById(%q);
		const cs = getComputedStyle(el);
		const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
		const lum = ([r, g, b]) => {
			const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
			return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
		};
		const a = lum(rgb(cs.color)), b = lum(rgb(cs.backgroundColor));
		return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
	})()`, id))
}

// TestBrowserAccessibility runs axe-core (WCAG 2.1 AA) over every screen of
// both apps at phone size, in the light and dark schemes: the listener's
// join form, live view (captions shown) and ended screen (after its buttons
// were tapped, which leaves :hover behind on a phone), the speaker's setup
// (also on a non-secure origin, with its note), on-air view and end dialog.
func TestBrowserAccessibility(t *testing.T) {
	src := axeSource(t)
	b := roomBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)

	setup := b.tab("speaker-setup")
	asPhone(setup)
	setup.navigate(roomURL(n) + "/speak#token=" + n.token("pastor"))
	setup.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	bothSchemes(setup, func(sc string) { checkAxe(t, setup, src, "setup on a non-secure origin, "+sc) })

	sp := b.tab("speaker")
	asPhone(sp)
	sp.navigate(n.url + "/speak#token=" + n.token("pastor"))
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	sp.click("mic-test")
	sp.waitStats("the microphone test", 10*time.Second, func(s stats) bool { return s["micTesting"] == true })
	bothSchemes(sp, func(sc string) { checkAxe(t, sp, src, "setup, microphone test, "+sc) })
	sp.click("start")
	s := sp.waitStats("on air", 15*time.Second, func(s stats) bool { return s.str("state") == "live" && s.num("chunksSent") > 0 })
	id := s.str("sessionId")

	join := b.tab("listener-join")
	asPhone(join)
	join.navigate(n.url + "/listen/" + id)
	bothSchemes(join, func(sc string) { checkAxe(t, join, src, "join, "+sc) })

	li := listenerAt(t, b, n.url, "listener", id, "en", asPhone)
	waitPlaying(li, stats{}, 15*time.Second)
	// A caption, so that the panel is measured too.
	li.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('captions').hidden = false;
		document.getElementById('caption-log').append(Object.assign(document.createElement('p'), {textContent: 'In the beginning was the Word.'}));
		document.getElementById('caption-live').textContent = 'and the Word was'`))
	sp.waitStats("the listener", 10*time.Second, func(s stats) bool { return s.num("listenerCount") == 1 })
	bothSchemes(li, func(sc string) { checkAxe(t, li, src, "live, "+sc) })
	bothSchemes(sp, func(sc string) { checkAxe(t, sp, src, "on air, "+sc) })
	sp.click("end")
	sp.waitJS(`document.getElementById('end-dialog').open`, 5*time.Second)
	bothSchemes(sp, func(sc string) { checkAxe(t, sp, src, "end dialog, "+sc) })

	// Stop and Play on the listener (the pointer stays on the button, as a
	// finger's :hover does), then the session ends under it.
	li.click("toggle")
	li.waitStats("stopped", 5*time.Second, func(s stats) bool { return s.str("state") == "stopped" })
	li.click("toggle")
	li.waitStats("live again", 5*time.Second, func(s stats) bool { return s.str("state") == "live" })
	sp.click("end-confirm")
	li.waitStats("ended", 10*time.Second, func(s stats) bool { return s.str("state") == "ended" })
	bothSchemes(li, func(sc string) {
		checkAxe(t, li, src, "ended, "+sc)
		if c := contrastOf(li, "toggle"); c < 4.5 {
			t.Errorf("the ended screen's Leave button (%s): contrast %.2f:1 under the pointer, want at least 4.5:1", sc, c)
		}
	})
	checkClean(t, sp, li, join, setup)
}
