// Helpers shared by the speaker and listener apps.

/** The session ID format of docs/protocol.md, "Session IDs". */
export const SESSION_ID_RE = /^[a-z]+-[a-z]+-[1-9][0-9]{2}$/;

/**
 * checkSessionId classifies what a user has typed so far: 'empty',
 * 'partial' (a prefix of a valid ID), 'invalid' or 'ok'.
 */
export function checkSessionId(s) {
  if (s === '') return 'empty';
  if (s.length <= 64 && SESSION_ID_RE.test(s)) return 'ok';
  if (s.length < 64 && /^[a-z]+(-([a-z]+(-([1-9][0-9]{0,1})?)?)?)?$/.test(s)) return 'partial';
  return 'invalid';
}

/** normalizeSessionId forgives what phones and people add while typing. */
export function normalizeSessionId(s) {
  return s.toLowerCase().replace(/[\s_–—]+/g, '-').replace(/^-+/, '');
}

/** wsURL is the /ws endpoint on this host with the given query. */
export function wsURL(params) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return `${scheme}//${location.host}/ws?${q}`;
}

/**
 * backoff returns the wait before reconnect attempt n (0-based): exponential
 * from base to max, with full jitter in [d/2, d] so that a crowd of
 * listeners does not come back in lockstep after a server restart.
 */
export function backoff(n, base = 500, max = 15000) {
  const d = Math.min(max, base * 2 ** Math.min(n, 10));
  return Math.round(d / 2 + Math.random() * (d / 2));
}

/**
 * The counters the browser tests read (window.pentecostStats). Apps add
 * their own fields; every field is plain data.
 */
export function stats(init) {
  const s = Object.assign({ state: 'idle', app: '', reconnects: 0, refreshes: 0, errors: [], cspViolations: [] }, init);
  window.pentecostStats = s;
  // Anything the Content-Security-Policy blocks is a bug in the apps.
  document.addEventListener('securitypolicyviolation', (e) => {
    s.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  return s;
}

/** fetchLanguages reads GET /languages: [{code, name, nativeName}]. */
export async function fetchLanguages() {
  const r = await fetch('/languages', { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`GET /languages: ${r.status}`);
  const body = await r.json();
  return body.languages || [];
}

/** displayName is a language's name in the UI language, or ''. */
export function displayName(code, uiLang) {
  try {
    return new Intl.DisplayNames([uiLang], { type: 'language' }).of(code) || '';
  } catch {
    return '';
  }
}

/**
 * languageName shows a code by its own name, followed by its name in the UI
 * language when that differs: "Español (Spanish)".
 */
export function languageName(languages, code, uiLang = 'en') {
  const l = languages.find((x) => x.code === code);
  if (!l) return displayName(code, uiLang) || code;
  const local = displayName(code, uiLang) || l.name;
  return l.nativeName.toLowerCase() === local.toLowerCase() ? l.nativeName : `${l.nativeName} (${local})`;
}

/** fetchSession reads the public view of a session (GET /sessions/{id}). */
export async function fetchSession(id) {
  const r = await fetch(`/sessions/${encodeURIComponent(id)}`, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`GET /sessions: ${r.status}`);
  return r.json();
}

function optionText(l) {
  return l.nativeName === l.name ? l.name : `${l.nativeName} — ${l.name}`;
}

/**
 * fillLanguages fills a <select> with languages, native names first. With
 * served ({source, translated, audio, transcript}), what is served now comes
 * first: the source (marked original, or original with transcript) and the
 * languages a processor translates into (those not in audio marked as
 * captions), then the rest under "other languages (original audio)".
 * labels: {now, other, original(name), captions(name), transcript(name)}.
 */
export function fillLanguages(select, languages, value, served = null, labels = null) {
  if (!served || !labels) {
    select.replaceChildren(...languages.map((l) => new Option(optionText(l), l.code)));
  } else {
    const tr = new Set(served.translated || []);
    // Served with captions only: the original audio and translated text.
    const audio = new Set(served.audio || served.translated || []);
    const now = document.createElement('optgroup');
    now.label = labels.now;
    const other = document.createElement('optgroup');
    other.label = labels.other;
    const src = languages.find((l) => l.code === served.source);
    const original = served.transcript && labels.transcript ? labels.transcript : labels.original;
    if (src) now.append(new Option(original(optionText(src)), src.code));
    for (const l of languages) {
      if (l.code === served.source) continue;
      if (!tr.has(l.code)) other.append(new Option(optionText(l), l.code));
      else if (!audio.has(l.code) && labels.captions) now.append(new Option(labels.captions(optionText(l)), l.code));
      else now.append(new Option(optionText(l), l.code));
    }
    select.replaceChildren(...[now, other].filter((g) => g.childElementCount > 0));
  }
  if (value) select.value = value;
}

/** levelOf maps an RMS level to 0..1 on a −60…0 dB scale (meters). */
export function levelOf(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  return Math.max(0, Math.min(1, (db + 60) / 60));
}

/** browserLanguage picks the first of the browser's languages that is supported. */
export function browserLanguage(languages, fallback = 'en') {
  const codes = new Set(languages.map((l) => l.code));
  for (const l of navigator.languages || [navigator.language]) {
    const c = String(l || '').toLowerCase().slice(0, 2);
    if (codes.has(c)) return c;
  }
  return codes.has(fallback) ? fallback : (languages[0] && languages[0].code) || fallback;
}

/** $ is getElementById. */
export const $ = (id) => document.getElementById(id);

/** show displays exactly one of the given sections. */
export function showOnly(sections, visible) {
  for (const s of sections) s.hidden = s !== visible;
}

/** closeInfo turns a close event into {code, reason} for the state logic. */
export function closeInfo(ev) {
  return { code: ev.code, reason: ev.reason || '' };
}

/** decodeJWT returns a token's payload without verifying it (display only). */
export function decodeJWT(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** Heartbeats every 30 s keep the connection fresh (docs/protocol.md, "Limits and rate limits"). */
export const HEARTBEAT_MS = 30000;

/** send sends a JSON message if the socket is open. */
export function sendJSON(ws, msg) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

// heartbeat keeps a heartbeat going on whichever connection current()
// returns (null for none), every HEARTBEAT_MS while started.
export function heartbeat(current) {
  let timer = 0;
  const stop = () => {
    clearInterval(timer);
    timer = 0;
  };
  const start = () => {
    stop();
    timer = setInterval(() => {
      const c = current();
      if (c) sendJSON(c.ws, { action: 'heartbeat', timestamp: Date.now() });
    }, HEARTBEAT_MS);
  };
  return { start, stop };
}

/**
 * contextToWall turns an AudioContext time into Unix milliseconds: the
 * moment that audio-clock time is heard at the output (getOutputTimestamp
 * where the browser has it, else an estimate from the reported latencies).
 */
export function contextToWall(ctx, t) {
  if (typeof ctx.getOutputTimestamp === 'function') {
    const ts = ctx.getOutputTimestamp();
    if (ts && ts.performanceTime > 0) return performance.timeOrigin + ts.performanceTime + (t - ts.contextTime) * 1000;
  }
  const lat = (ctx.baseLatency || 0) + (ctx.outputLatency || 0);
  return performance.timeOrigin + performance.now() + (t - ctx.currentTime + lat) * 1000;
}

// OPUS_KEY in localStorage overrides how this browser uses Opus, to try a
// path on a given phone (and for the tests): 'wasm' makes the listener skip
// WebCodecs for the WASM decoder; 'off' makes both apps use pcm16.
// docs/webapps.md, "Opus in the browser".
export const OPUS_KEY = 'pentecost.opus';

/** opusOverride returns OPUS_KEY's value: '', 'wasm' or 'off'. */
export function opusOverride() {
  return pref(OPUS_KEY);
}

/** pref reads a setting remembered on this device: '' when there is none,
 * or when the browser refuses storage (private mode). */
export function pref(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}

/** setPref remembers a setting on this device where the browser allows it. */
export function setPref(key, value) {
  try { localStorage.setItem(key, String(value)); } catch { /* private mode */ }
}
