package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pentecost/pentecost/processor"
	"github.com/pentecost/pentecost/server"
)

// speaker opens the speaker app with the start-up link (#token=...),
// creates a session in sourceLang and waits until audio is sent.
func speaker(t *testing.T, b *browser, n *node, sourceLang string) (*page, string) {
	t.Helper()
	return speakerAt(t, b, n, n.url, sourceLang)
}

// speakerAt is speaker with the page at base (a proxy in front of the node, say).
func speakerAt(t *testing.T, b *browser, n *node, base, sourceLang string) (*page, string) {
	t.Helper()
	p := b.tab("speaker")
	p.navigate(base + "/speak#token=" + n.token("pastor"))
	p.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	// The token left the address bar and lives in sessionStorage only.
	if h := eval[string](p, "location.hash"); h != "" {
		t.Errorf("speaker: the token is still in the address bar: %q", h)
	}
	if tok := eval[string](p, "sessionStorage.getItem('pentecost.speakerToken') || ''"); !strings.HasPrefix(tok, "ey") {
		t.Errorf("speaker: token not kept in sessionStorage: %q", tok)
	}
	if who := p.text("who"); !strings.Contains(who, "pastor") {
		t.Errorf("speaker: signed-in line %q does not name the token's sub", who)
	}
	p.do(chromedp.SetValue(chromedp.ID("source-language"), sourceLang))
	p.click("start")
	s := p.waitStats("a live session sending audio", 15*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s.str("sessionId") != "" && s.num("chunksSent") >= 5
	})
	return p, s.str("sessionId")
}

// listener opens the listener app at /listen/{id}, picks lang and presses
// Listen.
func listener(t *testing.T, b *browser, n *node, name, id, lang string) *page {
	t.Helper()
	return listenerAt(t, b, n.url, name, id, lang)
}

// listenerAt is listener with the page at base (another host name for the
// node, say); before, if given, runs on the new tab first (an emulated phone).
func listenerAt(t *testing.T, b *browser, base, name, id, lang string, before ...func(*page)) *page {
	t.Helper()
	p := b.tab(name)
	for _, f := range before {
		f(p)
	}
	p.navigate(base + "/listen/" + id)
	if v := eval[string](p, "document.getElementById('session-id').value"); v != id {
		t.Errorf("%s: the session ID field holds %q, want %q from the URL", name, v, id)
	}
	p.do(chromedp.SetValue(chromedp.ID("language"), lang))
	p.click("listen")
	return p
}

// waitPlaying waits until p has received and played audio since before.
func waitPlaying(p *page, before stats, within time.Duration) stats {
	return p.waitStats("audio received and played", within, func(s stats) bool {
		return s.str("state") == "live" &&
			s.num("framesReceived") >= before.num("framesReceived")+10 &&
			s.num("samplesPlayed") >= before.num("samplesPlayed")+8000 && // half a second
			s.num("playedPeak") > 0.01 // and not silence: the fake microphone beeps
	})
}

func TestBrowserBroadcast(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")

	// The share panel: the ID large, the listener link and its QR code.
	if got := sp.text("session-id"); got != id {
		t.Errorf("speaker shows session ID %q, want %q", got, id)
	}
	link := eval[string](sp, "document.getElementById('link').value")
	if want := n.url + "/listen/" + id; link != want {
		t.Errorf("listener link %q, want %q", link, want)
	}
	if k := eval[int](sp, "document.querySelectorAll('#qr svg path').length"); k != 1 {
		t.Errorf("no QR code drawn (%d paths)", k)
	}

	en := listener(t, b, n, "listener-en", id, "en")
	es := listener(t, b, n, "listener-es", id, "es")
	waitPlaying(en, stats{}, 15*time.Second)
	sEs := waitPlaying(es, stats{}, 15*time.Second)
	if sEs["untranslated"] != true {
		t.Errorf("listener-es: want the untranslated flag (no processor serves es), stats %v", sEs)
	}
	if txt := es.text("untranslated"); txt == "" {
		t.Errorf("listener-es: the untranslated badge is empty")
	}
	if en.stats()["untranslated"] != false {
		t.Errorf("listener-en: untranslated set for the source language")
	}
	checkLabels(t, sp)
	checkLabels(t, en)
	// The Spanish listener's UI follows its language.
	if lang := eval[string](es, "document.documentElement.lang"); lang != "es" {
		t.Errorf("listener-es: UI language %q, want es", lang)
	}

	// The speaker sees both listeners, by language.
	sp.waitStats("two listeners, one per language", 10*time.Second, func(s stats) bool {
		d, _ := s["languageDistribution"].(map[string]any)
		return s.num("listenerCount") == 2 && d["en"] == float64(1) && d["es"] == float64(1)
	})
	sp.waitJS(`document.querySelectorAll('#distribution li').length === 2`, 5*time.Second)

	// A listener changes language on the fly: the speaker sees it.
	es.do(chromedp.SetValue(chromedp.ID("player-language"), "fr"), chromedp.Evaluate[chromedp.Void](
		`document.getElementById('player-language').dispatchEvent(new Event('change'))`))
	es.waitStats("French", 5*time.Second, func(s stats) bool { return s.str("targetLanguage") == "fr" })
	sp.waitStats("a French listener", 10*time.Second, func(s stats) bool {
		d, _ := s["languageDistribution"].(map[string]any)
		return d["fr"] == float64(1) && d["es"] == nil
	})
	es.do(chromedp.SetValue(chromedp.ID("player-language"), "es"), chromedp.Evaluate[chromedp.Void](
		`document.getElementById('player-language').dispatchEvent(new Event('change'))`))
	es.waitStats("Spanish again", 5*time.Second, func(s stats) bool { return s.str("targetLanguage") == "es" })
	waitPlaying(es, es.stats(), 10*time.Second)

	// Pause shows on both listeners, in their languages; resume plays again.
	sp.click("pause")
	sp.waitStats("paused", 5*time.Second, func(s stats) bool { return s.str("state") == "paused" })
	for _, l := range []*page{en, es} {
		l.waitStats("paused by the speaker", 5*time.Second, func(s stats) bool { return s.str("state") == "paused" })
	}
	if got := en.text("status-text"); got != "Paused by the speaker" {
		t.Errorf("listener-en status %q", got)
	}
	if got := es.text("status-text"); got != "En pausa por el orador" {
		t.Errorf("listener-es status %q", got)
	}
	sp.click("pause")
	for _, l := range []*page{en, es} {
		waitPlaying(l, l.stats(), 10*time.Second)
	}

	// Mute, likewise.
	sp.click("mute")
	sp.waitStats("muted", 5*time.Second, func(s stats) bool { return s.str("state") == "muted" && s.num("level") == 0 })
	en.waitStats("speaker muted", 5*time.Second, func(s stats) bool { return s.str("state") == "muted" })
	sp.click("mute")
	waitPlaying(en, en.stats(), 10*time.Second)

	// Ending the session shows the ended state everywhere.
	sp.click("end")
	sp.waitJS(`document.getElementById('end-dialog').open`, 5*time.Second)
	sp.click("end-confirm")
	sp.waitStats("ended", 5*time.Second, func(s stats) bool { return s.str("state") == "ended" })
	for _, l := range []*page{en, es} {
		l.waitStats("the ended state", 5*time.Second, func(s stats) bool { return s.str("state") == "ended" })
	}
	if got := en.text("status-text"); got != "The session has ended" {
		t.Errorf("listener-en status %q", got)
	}
	if got := es.text("status-text"); got != "La sesión ha terminado" {
		t.Errorf("listener-es status %q", got)
	}
	checkClean(t, sp, en, es)
}

// TestBrowserServerRestart kills the node under a live broadcast and starts
// another on the same port and data dir: the speaker page and both listener
// pages reconnect by themselves and the audio flows again.
func TestBrowserServerRestart(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	a := startNode(t, "127.0.0.1:0", dir, nil)
	addr := a.addr
	sp, id := speaker(t, b, a, "en")
	en := listener(t, b, a, "listener-en", id, "en")
	es := listener(t, b, a, "listener-es", id, "es")
	waitPlaying(en, stats{}, 15*time.Second)
	waitPlaying(es, stats{}, 15*time.Second)

	a.stop()
	for _, p := range []*page{sp, en, es} {
		p.waitStats("noticing the server went away", 10*time.Second, func(s stats) bool {
			st := s.str("state")
			return st == "reconnecting" || st == "connecting"
		})
	}
	before := map[*page]stats{sp: sp.stats(), en: en.stats(), es: es.stats()}
	startNode(t, addr, dir, nil)

	sp.waitStats("the speaker back on air", 20*time.Second, func(s stats) bool {
		return s.str("state") == "live" && s.num("reconnects") >= 1 && s.str("sessionId") == id &&
			s.num("chunksSent") >= before[sp].num("chunksSent")+10
	})
	for _, l := range []*page{en, es} {
		s := waitPlaying(l, before[l], 20*time.Second)
		if s.num("reconnects") < 1 || s.str("sessionId") != id {
			t.Errorf("%s: after the restart: %v", l.name, s)
		}
	}
	sp.waitStats("both listeners counted again", 10*time.Second, func(s stats) bool { return s.num("listenerCount") == 2 })
	checkClean(t, sp, en, es)
}

// TestBrowserConnectionRefresh makes the server ask for a connection
// refresh every 2 s: both apps move to new connections without a gap,
// a reconnect or a visible state change.
func TestBrowserConnectionRefresh(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), func(c *server.Config) {
		c.ConnectionRefreshAfter = 2 * time.Second
	})
	sp, id := speaker(t, b, n, "en")
	en := listener(t, b, n, "listener-en", id, "en")
	waitPlaying(en, stats{}, 15*time.Second)

	deadline := time.Now().Add(20 * time.Second)
	for {
		s, l := sp.stats(), en.stats()
		if s.str("state") != "live" || l.str("state") != "live" {
			t.Fatalf("state changed during refreshes: speaker %v, listener %v", s.str("state"), l.str("state"))
		}
		if s.num("refreshes") >= 3 && l.num("refreshes") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("too few refreshes: speaker %s\nlistener %s", sp.statsJSON(), en.statsJSON())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := waitPlaying(en, en.stats(), 10*time.Second)
	if s.num("reconnects") != 0 || s.num("gaps") != 0 {
		t.Errorf("listener: refreshes were not transparent: %v", s)
	}
	if sp.stats().num("reconnects") != 0 {
		t.Errorf("speaker reconnected instead of refreshing: %s", sp.statsJSON())
	}
	sp.waitStats("one listener after the overlaps", 10*time.Second, func(s stats) bool { return s.num("listenerCount") == 1 })
	checkClean(t, sp, en)
}

// TestBrowserSpeakerReload reloads the speaker page mid-broadcast: the
// listener sees "speaker reconnecting", the reloaded page offers to resume
// the session, and resuming brings the audio back.
func TestBrowserSpeakerReload(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	sp, id := speaker(t, b, n, "en")
	en := listener(t, b, n, "listener-en", id, "en")
	waitPlaying(en, stats{}, 15*time.Second)

	sp.navigate(n.url + "/speak")
	en.waitStats("speaker reconnecting", 10*time.Second, func(s stats) bool { return s.str("state") == "speakerReconnecting" })
	if got := en.text("status-text"); got != "Speaker reconnecting…" {
		t.Errorf("listener status %q", got)
	}
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	if got := sp.text("resume-last"); !strings.Contains(got, id) {
		t.Fatalf("the reloaded speaker page offers %q, want to resume %s", got, id)
	}
	sp.click("resume-last")
	sp.waitStats("on air again", 10*time.Second, func(s stats) bool { return s.str("state") == "live" && s.str("sessionId") == id })
	waitPlaying(en, en.stats(), 10*time.Second)
	checkClean(t, sp, en)
}

// TestBrowserListenerStates covers the join form (the format check as you
// type, the UI language switcher), a session that does not exist, and a
// session whose speaker has not started yet.
func TestBrowserListenerStates(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	p := b.tab("listener")
	p.navigate(n.url + "/")

	checkLabels(t, p)
	check := func() string {
		return eval[string](p, "document.getElementById('session-id-check').dataset.check || ''")
	}
	for _, c := range []struct{ typed, value, want string }{
		{"golden", "golden", "partial"},
		{"-eagle-4", "golden-eagle-4", "partial"},
		{"27", "golden-eagle-427", "ok"},
		{"9", "golden-eagle-4279", "invalid"},
	} {
		p.do(chromedp.SendKeys(chromedp.ID("session-id"), c.typed))
		if v := eval[string](p, "document.getElementById('session-id').value"); v != c.value {
			t.Errorf("typed %q: field %q, want %q", c.typed, v, c.value)
		}
		if got := check(); got != c.want {
			t.Errorf("%q: check %q, want %q", c.value, got, c.want)
		}
	}
	if inv := eval[string](p, "document.getElementById('session-id').getAttribute('aria-invalid')"); inv != "true" {
		t.Errorf("aria-invalid %q on an invalid ID", inv)
	}
	// Typing forgives capitals and spaces.
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('session-id').value = ''`), chromedp.SendKeys(chromedp.ID("session-id"), "Golden Eagle 427"))
	if v := eval[string](p, "document.getElementById('session-id').value"); v != "golden-eagle-427" {
		t.Errorf("normalized to %q", v)
	}
	// The UI language switcher.
	p.do(chromedp.SetValue(chromedp.ID("ui-lang"), "fr"), chromedp.Evaluate[chromedp.Void](
		`document.getElementById('ui-lang').dispatchEvent(new Event('change'))`))
	if got := p.text("join-title"); got != "Écouter en direct" {
		t.Errorf("French title %q", got)
	}
	// The default listening language comes from the browser (en-US here).
	if lang := eval[string](p, "document.getElementById('language').value"); lang != "en" {
		t.Errorf("default language %q, want en", lang)
	}
	// Every UI language has every string.
	missing := eval[[]string](p, `import('/static/js/i18n.js').then((m) => {
		const en = Object.keys(m._strings.en);
		const out = [];
		for (const [code, s] of Object.entries(m._strings)) for (const k of en) if (!(k in s)) out.push(code + ':' + k);
		return out;
	})`, chromedp.EvalAwaitPromise)
	if len(missing) > 0 {
		t.Errorf("untranslated UI strings: %v", missing)
	}

	// A well-formed ID that no session has.
	p.click("listen")
	p.waitStats("not found", 10*time.Second, func(s stats) bool { return s.str("state") == "notFound" })
	if got := p.text("status-text"); got != "Session introuvable" {
		t.Errorf("not-found status %q", got)
	}
	if path := eval[string](p, "location.pathname"); path != "/listen/golden-eagle-427" {
		t.Errorf("address bar %q", path)
	}

	// A session created over HTTP whose speaker has not attached: wait. (The
	// UI language choice above is kept for the origin; forget it so that
	// this page's UI follows its listening language.)
	p.do(chromedp.Evaluate[chromedp.Void](`localStorage.removeItem('pentecost.uiLang')`))
	id := createOverHTTP(t, n, "en")
	w := listener(t, b, n, "waiting-listener", id, "pt")
	w.waitStats("waiting for the speaker", 10*time.Second, func(s stats) bool { return s.str("state") == "waiting" })
	if got := w.text("status-text"); got != "Aguardando o orador" {
		t.Errorf("waiting status %q", got)
	}

	// Its speaker attaches from the speaker app's resume form: the waiting
	// listener goes live by itself.
	sp := b.tab("speaker")
	sp.navigate(n.url + "/speak#token=" + n.token("pastor"))
	sp.waitStats("the setup form", 10*time.Second, func(s stats) bool { return s.str("state") == "setup" })
	sp.do(chromedp.Click(chromedp.CSS("details.resume summary"), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.ID("resume-id"), id, chromedp.NodeVisible))
	sp.click("resume")
	sp.waitStats("on air", 10*time.Second, func(s stats) bool { return s.str("state") == "live" && s.str("sessionId") == id })
	waitPlaying(w, stats{}, 10*time.Second)
	checkClean(t, p, w, sp)
}

// TestBrowserTranslated attaches a translation processor (the reference
// engine, passing the source through) for Spanish while a Spanish listener
// hears the untranslated source: the listener switches to the translated
// stream (kind 1) and drops the "untranslated" flag, and goes back to the
// source when the processor leaves, playing all along.
func TestBrowserTranslated(t *testing.T) {
	b := newBrowser(t)
	n := startNode(t, "127.0.0.1:0", t.TempDir(), nil)
	_, id := speaker(t, b, n, "en")
	es := listener(t, b, n, "listener-es", id, "es")
	s := waitPlaying(es, stats{}, 15*time.Second)
	if s["untranslated"] != true || s.num("lastKind") != 0 {
		t.Fatalf("before the processor: %v", s)
	}

	stop := runProcessor(t, n, processor.Options{Languages: []string{"es"}, Translator: processor.Passthrough{}})

	es.waitStats("translated audio", 15*time.Second, func(s stats) bool {
		return s["untranslated"] == false && s.num("lastKind") == 1
	})
	waitPlaying(es, es.stats(), 10*time.Second)
	if !eval[bool](es, "document.getElementById('untranslated').hidden") {
		t.Errorf("the untranslated badge still shows")
	}

	stop()
	es.waitStats("the source again", 15*time.Second, func(s stats) bool {
		return s["untranslated"] == true && s.num("lastKind") == 0
	})
	waitPlaying(es, es.stats(), 10*time.Second)
	checkClean(t, es)
}
