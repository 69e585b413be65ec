// The synthetic voice: the listener's own device speaks the translated
// captions of a language served with captions only (docs/webapps.md,
// "Synthetic voice"). No audio crosses the network for it: the text is
// already here, and speechSynthesis turns it into speech on the phone.
//
// It speaks final captions only, one at a time, and stays near live: when
// the speaker talks faster than the voice, the oldest waiting captions are
// dropped (they stay on screen) and the voice speeds up a little.

// At most this many captions wait behind the one being spoken.
const MAX_WAITING = 2;
// A caption that waited longer than this is too old to speak.
const MAX_AGE_MS = 12000;
// The rate while others wait: 20 % faster, still clear.
const CATCH_UP_RATE = 1.2;

/** voiceSupported reports whether this browser has speech synthesis. */
export function voiceSupported() {
  return typeof window.speechSynthesis === 'object' && window.speechSynthesis !== null &&
    typeof window.SpeechSynthesisUtterance === 'function';
}

// normLang turns a voice's lang ("es-ES", Android's older "es_ES", "ES")
// into a lower-case BCP 47 tag.
function normLang(l) {
  return String(l || '').replace(/_/g, '-').toLowerCase();
}

/**
 * pickVoice chooses a voice for lang (a two-letter code) from voices, or
 * null when none speaks it. It prefers a voice on the device (a network
 * voice needs the Internet, which a venue's Wi-Fi may not have), then one
 * in the listener's own variant of the language (es-MX for a Mexican
 * phone), then the engine's default.
 */
export function pickVoice(voices, lang, preferred = []) {
  const want = String(lang || '').toLowerCase();
  const variants = preferred.map(normLang).filter((l) => l.split('-')[0] === want);
  let best = null;
  let bestScore = -1;
  for (const v of voices || []) {
    const l = normLang(v.lang);
    if (l.split('-')[0] !== want) continue;
    const score = (v.localService ? 4 : 0) + (variants.includes(l) ? 2 : 0) + (v.default ? 1 : 0);
    if (score > bestScore) {
      best = v;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Voice speaks final captions in one language.
 *
 * onChange() is called whenever what it can do or does changes (a voice
 * found or lost, speaking started or ended), so the page can render.
 */
export class Voice {
  constructor({ onChange = () => {}, now = () => performance.now() } = {}) {
    this.synth = voiceSupported() ? window.speechSynthesis : null;
    this.onChange = onChange;
    this.now = now;
    this.lang = '';
    this.voice = null;
    this.enabled = false;
    this.paused = false;
    this.unlocked = false;
    this.queue = []; // {text, at}
    this.current = null; // the utterance being spoken
    this.watchdog = 0;
    this.spoken = 0; // utterances started
    this.ended = 0; // utterances the engine finished
    this.dropped = 0; // captions skipped to stay near live
    if (this.synth) {
      // Voices load asynchronously: Chromium's list is empty at first.
      const refresh = () => this.pick();
      if (typeof this.synth.addEventListener === 'function') this.synth.addEventListener('voiceschanged', refresh);
      else this.synth.onvoiceschanged = refresh;
      // Chromium keeps speaking after the page is left or reloaded.
      window.addEventListener('pagehide', () => this.synth.cancel());
    }
  }

  /** supported reports whether the browser can speak at all. */
  get supported() { return this.synth !== null; }

  /** available reports whether a voice speaks the current language. */
  get available() { return this.voice !== null; }

  get voiceName() { return this.voice ? `${this.voice.name} (${this.voice.lang})` : ''; }

  get speaking() { return this.current !== null; }

  /** setLanguage picks a voice for lang; a new language drops what waits. */
  setLanguage(lang) {
    if (lang === this.lang) return;
    this.lang = lang;
    this.clear();
    this.pick();
  }

  pick() {
    const voices = this.synth ? this.synth.getVoices() : [];
    const v = pickVoice(voices, this.lang, navigator.languages || [navigator.language]);
    if (v === this.voice) return;
    this.voice = v;
    if (!v) this.clear();
    this.onChange();
    this.pump();
  }

  /**
   * enable starts speaking the captions that arrive from now on. Call it
   * from a user gesture (a click, a change): Safari on iOS speaks only after
   * a first utterance started by the user, so enable speaks an empty one.
   */
  enable() {
    if (!this.synth) return;
    this.enabled = true;
    if (!this.unlocked) {
      this.unlocked = true;
      try { this.synth.speak(new SpeechSynthesisUtterance('')); } catch { /* nothing to unlock */ }
    }
    this.pick();
    this.onChange();
  }

  /** disable stops speaking and forgets what waits. */
  disable() {
    this.enabled = false;
    this.clear();
    this.onChange();
  }

  /** say queues a final caption. */
  say(text) {
    const s = String(text || '').trim();
    if (!this.enabled || !this.synth || !s) return;
    this.queue.push({ text: s, at: this.now() });
    while (this.queue.length > MAX_WAITING) {
      this.queue.shift();
      this.dropped++;
    }
    this.pump();
  }

  /**
   * clear cancels the utterance being spoken and those waiting: the
   * captions cleared (the language changed or fell back to the original),
   * the speaker muted, the listener stopped.
   */
  clear() {
    this.queue = [];
    const was = this.current;
    this.current = null;
    clearTimeout(this.watchdog);
    if (this.synth && (was || this.synth.speaking || this.synth.pending)) this.synth.cancel();
    if (was) this.onChange();
  }

  /** pause holds the voice while the speaker pauses the broadcast. */
  pause() {
    if (this.paused) return;
    this.paused = true;
    // Chrome on Android cancels the current utterance instead of pausing
    // it; the captions still waiting are spoken after the resume.
    if (this.synth && this.current) this.synth.pause();
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    if (this.synth) this.synth.resume();
    if (this.current) this.arm(this.current);
    this.pump();
  }

  // arm gives up on u in time: some engines never end a long utterance
  // (Chromium stops speaking after about 15 s and stays "speaking").
  arm(u) {
    clearTimeout(this.watchdog);
    const bound = 4000 + (u.text.length * 120) / (u.rate || 1);
    this.watchdog = setTimeout(() => {
      if (this.current !== u || this.paused) return;
      this.current = null;
      this.synth.cancel();
      this.onChange();
      this.pump();
    }, bound);
  }

  pump() {
    if (this.current || this.paused || !this.enabled || !this.voice || !this.synth) return;
    const now = this.now();
    while (this.queue.length > 0 && now - this.queue[0].at > MAX_AGE_MS) {
      this.queue.shift();
      this.dropped++;
    }
    const next = this.queue.shift();
    if (!next) return;
    const u = new SpeechSynthesisUtterance(next.text);
    u.lang = this.voice.lang || this.lang;
    try { u.voice = this.voice; } catch { /* a voice the engine no longer has */ }
    u.rate = this.queue.length > 0 ? CATCH_UP_RATE : 1;
    const done = () => {
      if (this.current !== u) return; // cancelled: clear() moved on
      this.current = null;
      clearTimeout(this.watchdog);
      this.onChange();
      this.pump();
    };
    u.onend = () => {
      if (this.current === u) this.ended++;
      done();
    };
    u.onerror = done;
    this.current = u;
    this.spoken++;
    this.arm(u);
    this.synth.speak(u);
    this.onChange();
  }
}
