// The listener app: join a session by ID, pick a language, play the live
// audio through the player (js/player/). See docs/webapps.md.
import * as i18n from './i18n.js';
import {
  $, checkSessionId, normalizeSessionId, wsURL, backoff, stats, fetchLanguages, fetchSession,
  fillLanguages, browserLanguage, languageName, displayName, heartbeat, sendJSON, showOnly, levelOf,
  pref, setPref,
} from './common.js';
import { Player, audioSupported } from './player/player.js';
import { createDecoder, canDecode, PCM_RATE } from './player/decode.js';
import { mediaSession, playbackState, clearMediaSession, screenWake, wakeLockSupported } from './background.js';
import { Voice } from './voice.js';

// The codec to ask for: Opus (about 26 kbit/s instead of 264) when this
// browser can decode it, WebCodecs or WASM; docs/webapps.md. pcm16 from
// the first Opus decoder that cannot run (the WASM decoder did not load).
let wantCodec = canDecode('opus') ? 'opus' : 'pcm16';

const LANG_KEY = 'pentecost.listenLanguage';
const LOW_DELAY_KEY = 'pentecost.lowDelay';
const CAPTION_SIZE_KEY = 'pentecost.captionSize';
const MODE_KEY = 'pentecost.listenMode';
// While the phone's voice speaks, the original underneath is this loud.
const DUCK = 0.25;
const CAPTION_SIZES = [1, 1.25, 1.5, 1.85, 2.25, 2.75]; // rem
const MAX_CAPTION_LINES = 200;
// Latency taps (docs/webapps.md, "Latency"): ?taps on the URL records when
// loud onsets are heard, for the browser test that measures mouth-to-ear.
const TAPS = new URLSearchParams(location.search).has('taps');
if (TAPS) window.pentecostTaps = { ear: [] };

// Counters for the browser tests and for curious people (window.pentecostStats).
const S = stats({
  app: 'listener',
  sessionId: '',
  targetLanguage: '',
  sourceLanguage: '',
  connectionId: '',
  framesReceived: 0, // unique audio frames received
  playbackPausedAcks: 0, // the server's playbackPaused answers: no audio follows one
  duplicates: 0, // frames dropped as already seen (refresh overlap)
  gaps: 0, // sequence gaps (lost frames), faded over
  lastSeq: null,
  lastKind: null,
  framesPlayed: 0, // frames (chunks) the worklet finished playing
  samplesPlayed: 0, // samples the worklet played
  underruns: 0,
  skips: 0,
  playedPeak: 0, // loudest sample played so far: not silence
  bufferedMs: 0,
  targetMs: 0,
  untranslated: false,
  speakerConnected: false,
  listenerCount: 0,
  captions: 0, // caption messages shown
  captionLines: 0, // final lines in the panel
  captionLive: '', // the interim line
  audioContextState: '',
  path: '', // 'worklet' or 'scheduled' (no secure context)
  secureContext: window.isSecureContext,
  delayMs: 0, // the delay this device adds: buffer + output
  jitterMs: 0,
  drainedMs: 0,
  late: 0, // scheduled blocks that came too late (scheduled path)
  lowDelay: false,
  level: 0, // 0-100, the audio-activity indicator
  audioElement: false, // sound goes through the <audio> element
  audioElementPlaying: false,
  translatedLanguages: [], // from GET /sessions/{id}
  transcriptServed: false, // from GET /sessions/{id}: the source language has a transcript
  audioLanguages: [], // from GET /sessions/{id}
  captionsServed: false, // a processor serves the language (sessionJoined/languageChanged captions)
  captionsKind: 'captions', // 'transcript' for the source language: what the speaker says
  listenMode: 'audio', // what the listener follows now: audio, voice, text
  listenModeWanted: 'audio', // what they chose
  voiceOffered: false, // the language has captions but no translated audio
  voiceSupported: false,
  voiceAvailable: false, // a voice speaks the language on this device
  voiceName: '',
  voiceSpeaking: false,
  voiceSpoken: 0, // utterances started
  voiceEnded: 0, // utterances the engine said it finished
  voiceDropped: 0, // captions skipped to stay near live
  codec: '', // what the server sends: sessionJoined's codec
  decoder: '', // how it is decoded: 'pcm16', 'webcodecs' or 'wasm'
  decoderError: '', // why Opus could not be decoded here (then pcm16 is asked for)
  wakeLock: false, // the screen wake lock is held
  bytesReceived: 0, // audio bytes received (payloads, headers included)
});

const el = {
  join: $('join'), player: $('player'), form: $('join-form'), id: $('session-id'), check: $('session-id-check'),
  language: $('language'), joinError: $('join-error'), sessionLabel: $('player-session'), status: $('status'),
  statusText: $('status-text'), statusDetail: $('status-detail'), untranslated: $('untranslated'),
  captions: $('captions'), captionLog: $('caption-log'), captionLive: $('caption-live'),
  captionSmaller: $('caption-smaller'), captionLarger: $('caption-larger'),
  activity: $('activity'), activityBar: $('activity-bar'), delay: $('delay'),
  lowDelay: $('low-delay'), keepAwake: $('keep-awake'), keepAwakeField: $('keep-awake-field'), audio: $('audio'),
  toggle: $('toggle'), volume: $('volume'), playerLanguage: $('player-language'), leave: $('leave'), uiLang: $('ui-lang'),
  modeField: $('mode-field'), modeAudio: $('mode-audio'), modeVoice: $('mode-voice'), modeText: $('mode-text'),
  modeVoiceField: $('mode-voice-field'), modeAudioHint: $('mode-audio-hint'), modeVoiceHint: $('mode-voice-hint'),
  voiceNote: $('voice-note'), modeBadge: $('mode-badge'),
  captionsTitle: $('captions-title'), modeTextLabel: document.querySelector('label[for="mode-text"]'), modeTextHint: $('mode-text-hint'),
};

let languages = [];
let session = null; // GET /sessions/{id}: {sourceLanguage, translatedLanguages}
let player = null; // Player
let decoder = null; // the decode stage of the current stream
let audioFormat = 'pcm16';
let active = null; // {ws, id, joined} the connection audio and control come from
let pending = null; // {ws} a refresh connection not yet complete
let wanted = false; // the user pressed Listen and has not left
let ended = false;
let fatal = ''; // a state that stops reconnecting: notFound, error
let fatalDetail = '';
let attempt = 0;
let retryIn = 0;
let reconnectTimer = 0;
const beat = heartbeat(() => active);
let refreshTimer = 0;
let everJoined = false;
let speakerSeen = false;
let speakerConnected = false;
let broadcast = { isPaused: false, isMuted: false, volume: 1 };
let userPaused = false;
let lastSeq = null;
let fadeNext = false;
let full = false;
// The language's service, from sessionJoined and languageChanged: whether
// the audio is made for it, and whether its translated captions arrive.
let audioTranslated = true;
let captionsServed = false;
let captionsSeen = false; // a caption arrived for this language (a transcript, say)
let wantMode = (() => {
  const m = pref(MODE_KEY);
  return ['audio', 'voice', 'text'].includes(m) ? m : 'audio';
})();
let mode = 'audio';
const voice = new Voice({ onChange: () => { applyVolume(); render(); } });
S.voiceSupported = voice.supported;

// ---- UI language and the form ----

i18n.initLanguage();
i18n.fillSwitcher(el.uiLang);
i18n.apply();
i18n.onLanguageChange(() => {
  i18n.apply();
  renderCheck();
  if (languages.length) fillPickers();
  render();
  describeMedia();
});

function renderCheck() {
  const v = el.id.value;
  const c = checkSessionId(v);
  el.id.setAttribute('aria-invalid', c === 'invalid' ? 'true' : 'false');
  el.check.dataset.check = c;
  el.check.textContent = c === 'ok' ? i18n.t('idOk') : c === 'partial' ? i18n.t('idIncomplete') : c === 'invalid' ? i18n.t('idInvalid') : '';
  el.form.dataset.valid = c === 'ok' ? 'true' : 'false';
}

el.id.addEventListener('input', () => {
  const n = normalizeSessionId(el.id.value);
  if (n !== el.id.value) {
    const pos = el.id.selectionStart;
    el.id.value = n;
    try { el.id.setSelectionRange(pos, pos); } catch { /* not focused */ }
  }
  renderCheck();
  clearTimeout(lookupTimer);
  if (checkSessionId(el.id.value) === 'ok') lookupTimer = setTimeout(() => loadSession(el.id.value), 300);
});

let lookupTimer = 0;

function languageFromBrowser() {
  const stored = pref(LANG_KEY);
  if (stored && languages.some((l) => l.code === stored)) return stored;
  return browserLanguage(languages);
}

el.language.addEventListener('change', () => i18n.setLanguage(el.language.value));

el.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = normalizeSessionId(el.id.value.trim());
  el.id.value = id;
  renderCheck();
  if (checkSessionId(id) !== 'ok') {
    el.id.focus();
    return;
  }
  start(id, el.language.value);
});

// ---- Audio ----

// startAudio creates the player. It runs in the click handler: browsers let
// audio start only after a gesture.
function startAudio() {
  if (player) {
    player.resume();
    return;
  }
  if (!audioSupported()) throw new Error(i18n.t('lNoAudio'));
  if (navigator.audioSession) {
    // iOS 17+: a "playback" session keeps sounding with the screen locked.
    try { navigator.audioSession.type = 'playback'; } catch { /* older Safari */ }
  }
  player = new Player({
    rate: PCM_RATE,
    lowDelay: el.lowDelay.checked,
    taps: TAPS,
    audio: el.audio,
    onStats: onPlayerStats,
    onTap: (t) => window.pentecostTaps.ear.push(t),
  });
  const ctx = player.ctx;
  S.path = player.kind;
  S.audioElement = player.viaElement;
  S.lowDelay = player.lowDelay;
  ctx.onstatechange = () => {
    S.audioContextState = ctx.state;
    // iOS leaves a context "interrupted" after a call or the lock screen.
    if (ctx.state !== 'running' && wanted && !serverPaused() && document.visibilityState === 'visible') player.resume();
  };
  S.audioContextState = ctx.state;
  applyVolume();
}

let lastAria = 0;
let lastDelayText = 0;

function onPlayerStats(m) {
  S.samplesPlayed = m.samplesPlayed;
  S.framesPlayed = m.chunksPlayed;
  S.underruns = m.underruns;
  S.skips = m.skips;
  S.bufferedMs = m.bufferedMs;
  S.targetMs = m.targetMs;
  S.jitterMs = m.jitterMs;
  S.drainedMs = m.drainedMs;
  S.late = m.late;
  S.delayMs = m.delayMs;
  S.playedPeak = Math.max(S.playedPeak, m.peak);
  S.audioElementPlaying = !!(player && player.viaElement && !el.audio.paused);
  const v = levelOf(m.rms);
  S.level = Math.round(v * 100);
  el.activityBar.style.transform = `scaleX(${v})`;
  const now = performance.now();
  if (now - lastAria > 1000) {
    lastAria = now;
    el.activity.setAttribute('aria-valuenow', String(S.level));
  }
  if (now - lastDelayText > 500) {
    lastDelayText = now;
    const text = m.playing ? i18n.t('lDelay', { ms: m.delayMs }) : '';
    if (el.delay.textContent !== text) el.delay.textContent = text;
  }
}

function applyVolume() {
  if (!player) return;
  const duck = mode === 'voice' && voice.speaking ? DUCK : 1;
  player.setVolume((Number(el.volume.value) / 100) * (typeof broadcast.volume === 'number' ? broadcast.volume : 1) * duck);
}

el.volume.addEventListener('input', applyVolume);

// onAudio handles one binary frame: the 16-byte header of docs/protocol.md
// section 7.2, then the payload in the session's audio format, which the
// decode stage turns into samples for the player.
function onAudio(buf) {
  if (buf.byteLength < 16) return;
  const arrival = performance.now();
  S.bytesReceived += buf.byteLength;
  const dv = new DataView(buf);
  if (dv.getUint8(0) !== 1) return;
  const kind = dv.getUint8(1);
  const seq = dv.getUint32(4);
  let gap = fadeNext;
  if (S.lastKind !== null && kind !== S.lastKind) {
    // A processor started (or stopped) serving this language: another
    // stream, with its own numbering.
    lastSeq = null;
    gap = true;
    if (decoder) newDecoder(audioFormat);
  }
  if (lastSeq !== null) {
    const d = (seq - lastSeq) | 0; // int32 difference survives wrap-around
    if (d <= 0 && d > -3000) {
      S.duplicates++; // the refresh overlap: both connections carry it
      return;
    }
    if (d > 1) {
      S.gaps++;
      gap = true;
    } else if (d < 0) {
      gap = true; // the stream started over
    }
  }
  fadeNext = false;
  lastSeq = seq;
  S.lastSeq = seq;
  S.lastKind = kind;
  S.framesReceived++;
  if (!speakerConnected) {
    // Audio means a speaker. (The server announces a speaker coming back
    // after a drop, but not one attaching for the first time.)
    speakerConnected = true;
    speakerSeen = true;
    render();
  }
  setUntranslated(kind === 0 && S.targetLanguage !== S.sourceLanguage);
  if (userPaused || mode === 'text' || !decoder || !player) return;
  decoder.decode(buf, 16, { gap, arrival });
  S.decoder = decoder.kind;
}

// setService reads what sessionJoined or languageChanged says the language
// gets: audio made for it (translated), its translated captions (captions;
// older servers leave it out: none announced).
function setService(m) {
  audioTranslated = m.translated !== false || S.targetLanguage === S.sourceLanguage;
  captionsServed = m.captions === true;
  S.captionsServed = captionsServed;
  applyMode();
}

// setUntranslated follows the stream's kind. Falling back to the original
// clears the captions: they were the translation's, which is no longer heard.
function setUntranslated(u) {
  if (u === S.untranslated) return;
  S.untranslated = u;
  if (u) clearCaptions();
  render();
}

// setCodec switches to the codec a connection receives: the one asked for,
// or what the server can send (a server without Opus relays the session's
// own).
function setCodec(ws, codec) {
  audioFormat = codec;
  S.codec = codec;
  if (!canDecode(codec)) {
    fatal = 'error';
    fatalDetail = i18n.t('lFormat', { format: codec });
    ws.close(1000);
    return;
  }
  newDecoder(codec);
  S.decoder = decoder ? decoder.kind : '';
}

function newDecoder(format) {
  if (decoder) decoder.close();
  decoder = createDecoder(format, (samples, rate, meta) => {
    if (player && !userPaused) player.push(samples, rate, meta);
  }, opusFailed);
}

// opusFailed: no Opus decoder can run here after all. Rather than stay
// silent, reconnect asking for pcm16 (more bandwidth, but it plays).
function opusFailed(e) {
  S.decoderError = String((e && e.message) || e);
  if (wantCodec === 'pcm16') return;
  wantCodec = 'pcm16';
  if (active) active.ws.close(1000, 'codec');
}

// ---- Captions ----

function captionSize(i) {
  const n = Math.max(0, Math.min(CAPTION_SIZES.length - 1, i));
  el.captions.style.setProperty('--caption-size', `${CAPTION_SIZES[n]}rem`);
  el.captions.dataset.size = String(n);
  el.captionSmaller.disabled = n === 0;
  el.captionLarger.disabled = n === CAPTION_SIZES.length - 1;
  setPref(CAPTION_SIZE_KEY, n);
}

function storedCaptionSize() {
  const v = pref(CAPTION_SIZE_KEY);
  const n = v === '' ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : 1;
}

captionSize(storedCaptionSize());
el.captionSmaller.addEventListener('click', () => captionSize(Number(el.captions.dataset.size) - 1));
el.captionLarger.addEventListener('click', () => captionSize(Number(el.captions.dataset.size) + 1));

function onCaption(m) {
  if (m.targetLanguage && m.targetLanguage !== S.targetLanguage) return;
  S.captions++;
  if (!captionsSeen) {
    captionsSeen = true;
    render(); // the choice of how to follow appears with the first caption
  }
  el.captions.hidden = false;
  const log = el.captionLog;
  // Follow the newest line unless the listener scrolled back to read.
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  if (m.final) {
    if (m.text) {
      const line = document.createElement('p');
      line.textContent = m.text;
      log.append(line);
      while (log.childElementCount > MAX_CAPTION_LINES) log.firstElementChild.remove();
      if (mode === 'voice') voice.say(m.text);
    }
    setLiveCaption('');
  } else {
    setLiveCaption(m.text || '');
  }
  S.captionLines = log.childElementCount;
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function setLiveCaption(text) {
  el.captionLive.textContent = text;
  S.captionLive = text;
}

// clearCaptions empties the panel: the language changed, or fell back to
// the original, so the lines shown no longer match what is heard.
function clearCaptions() {
  el.captionLog.replaceChildren();
  setLiveCaption('');
  S.captionLines = 0;
  voice.clear();
}

// ---- How to follow: sound, the phone's voice, captions only ----

// voiceOffered: the language is served with captions only, so the phone
// may speak them.
function voiceOffered() {
  return captionsServed && !audioTranslated && S.targetLanguage !== S.sourceLanguage;
}

// applyMode works out the mode the listener follows from their choice and
// what the language offers: the voice falls back to the sound where the
// language has its own audio (or no captions), and comes back by itself.
function applyMode() {
  const next = wantMode === 'text' ? 'text' : wantMode === 'voice' && voiceOffered() ? 'voice' : 'audio';
  const was = mode;
  mode = next;
  S.listenMode = mode;
  S.listenModeWanted = wantMode;
  S.voiceOffered = voiceOffered();
  voice.setLanguage(S.targetLanguage);
  if (mode === 'voice') voice.enable();
  else if (was === 'voice') voice.disable();
  if ((was === 'text') !== (mode === 'text')) {
    // Captions only: the server stops sending audio to this listener.
    if (mode === 'text' && player) {
      player.flush();
      player.pause(); // nothing to play: let the phone's audio rest
    }
    if (mode !== 'text') {
      fadeNext = true;
      if (player && wanted && !userPaused) player.resume();
    }
    syncServerPlayback();
  }
  applyVolume();
}

// syncServerPlayback tells the server whether to send audio: not while the
// listener has stopped, nor in captions-only mode.
function syncServerPlayback() {
  if (active && active.joined) sendJSON(active.ws, { action: serverPaused() ? 'pausePlayback' : 'resumePlayback' });
}

function serverPaused() { return userPaused || mode === 'text'; }

for (const r of [el.modeAudio, el.modeVoice, el.modeText]) {
  r.addEventListener('change', () => {
    if (!r.checked) return;
    wantMode = r.value;
    setPref(MODE_KEY, wantMode);
    // In the gesture: Safari on iOS lets a page speak only after a first
    // utterance the user started.
    if (wantMode === 'voice') voice.enable();
    applyMode();
    render();
  });
}

// ---- Options: low delay, keep the screen on ----

el.lowDelay.checked = pref(LOW_DELAY_KEY) === '1';
el.lowDelay.addEventListener('change', () => {
  setPref(LOW_DELAY_KEY, el.lowDelay.checked ? '1' : '0');
  S.lowDelay = el.lowDelay.checked;
  if (player) player.setLowDelay(el.lowDelay.checked);
});

const wake = screenWake((on) => { S.wakeLock = on; });
el.keepAwakeField.hidden = !wakeLockSupported();
el.keepAwake.addEventListener('change', () => wake.set(el.keepAwake.checked && wanted));

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && player && wanted && !serverPaused()) player.resume();
});

// ---- Media Session: the lock screen's title and buttons ----

function describeMedia() {
  if (!wanted) return;
  mediaSession(
    { title: i18n.t('lMediaTitle', { id: S.sessionId }), artist: languageName(languages, S.targetLanguage, i18n.lang()) },
    { play: () => setUserPaused(false), pause: () => setUserPaused(true) },
  );
  playbackState(userPaused ? 'paused' : 'playing');
}

// ---- Which languages are served ----

// loadSession reads GET /sessions/{id} for the languages a processor serves
// now, to list them first; it fails quietly (the plain list stays).
let sessionFetch = 0;
async function loadSession(id) {
  const n = ++sessionFetch;
  let v = null;
  try { v = await fetchSession(id); } catch { v = null; }
  if (n !== sessionFetch) return;
  session = v && v.sessionId === id ? v : null;
  S.translatedLanguages = (session && session.translatedLanguages) || [];
  S.transcriptServed = !!(session && session.transcript);
  // A server that does not say which have audio gives audio to them all.
  S.audioLanguages = session ? (session.audioLanguages || S.translatedLanguages) : [];
  fillPickers();
}

function fillPickers() {
  const info = session ? {
    source: session.sourceLanguage,
    translated: session.translatedLanguages || [],
    audio: session.audioLanguages || session.translatedLanguages || [],
    transcript: session.transcript === true,
  } : null;
  const labels = {
    now: i18n.t('optNow'), other: i18n.t('optOther'), original: (name) => i18n.t('optOriginal', { name }),
    captions: (name) => i18n.t('optCaptions', { name }), transcript: (name) => i18n.t('optTranscript', { name }),
  };
  fillLanguages(el.language, languages, el.language.value, info, labels);
  // Keep what the select shows: a change the server has not confirmed yet.
  if (S.targetLanguage) fillLanguages(el.playerLanguage, languages, el.playerLanguage.value || S.targetLanguage, info, labels);
}

// ---- Connections ----

function start(id, lang) {
  try {
    startAudio();
  } catch (e) {
    el.joinError.textContent = e.message;
    el.joinError.hidden = false;
    return;
  }
  el.joinError.hidden = true;
  setPref(LANG_KEY, lang);
  if (location.pathname !== `/listen/${id}`) history.replaceState(null, '', `/listen/${id}`);
  S.sessionId = id;
  S.targetLanguage = lang;
  wanted = true;
  ended = false;
  fatal = '';
  attempt = 0;
  everJoined = false;
  speakerSeen = false;
  speakerConnected = false;
  broadcast = { isPaused: false, isMuted: false, volume: 1 };
  full = false;
  userPaused = false;
  lastSeq = null;
  S.untranslated = false;
  audioTranslated = true;
  captionsServed = false;
  captionsSeen = false;
  // In the Listen click: Safari on iOS speaks only after a first utterance
  // the user started, so a listener who chose the phone's voice before has
  // it unlocked here.
  if (wantMode === 'voice') voice.enable();
  applyMode();
  el.sessionLabel.textContent = id;
  clearCaptions();
  el.captions.hidden = true;
  fillPickers();
  showOnly([el.join, el.player], el.player);
  i18n.setLanguage(lang);
  connect();
  render();
  describeMedia();
  wake.set(el.keepAwake.checked);
  if (!session || session.sessionId !== id) loadSession(id);
  el.statusText.focus();
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  const ws = new WebSocket(wsURL({ sessionId: S.sessionId, targetLanguage: S.targetLanguage, codec: wantCodec }));
  ws.binaryType = 'arraybuffer';
  active = { ws, id: '', joined: false };
  wire(ws);
  render();
}

function wire(ws) {
  ws.onmessage = (ev) => {
    const mine = (active && active.ws === ws) || (pending && pending.ws === ws);
    if (!mine) return;
    if (typeof ev.data !== 'string') {
      onAudio(ev.data);
      return;
    }
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    onMessage(ws, m);
  };
  ws.onclose = (ev) => onClose(ws, ev);
}

function onMessage(ws, m) {
  switch (m.type) {
    case 'sessionJoined':
      if (!active || active.ws !== ws) return;
      active.id = m.connectionId;
      active.joined = true;
      S.connectionId = m.connectionId;
      S.sourceLanguage = m.sourceLanguage;
      S.targetLanguage = m.targetLanguage || S.targetLanguage;
      S.listenerCount = m.listenerCount;
      broadcast = m.broadcastState || broadcast;
      speakerConnected = m.speakerConnected !== false;
      if (speakerConnected) speakerSeen = true;
      setUntranslated(m.translated === false && S.targetLanguage !== S.sourceLanguage);
      setService(m);
      setCodec(ws, m.codec || m.audioFormat || 'pcm16');
      // The server does not remember a pause across connections.
      if (serverPaused()) sendJSON(ws, { action: 'pausePlayback' });
      // A new stream position: sequence numbers may start over after a
      // server restart, so forget the old one and fade the first chunk in.
      lastSeq = null;
      fadeNext = true;
      everJoined = true;
      attempt = 0;
      full = false;
      beat.start();
      applyVolume();
      break;
    case 'connectionRefreshComplete':
      if (pending && pending.ws === ws) finishRefresh(m);
      return;
    case 'connectionRefreshRequired':
    case 'connectionWarning':
      if (active && active.ws === ws) startRefresh();
      return;
    case 'broadcastPaused':
    case 'broadcastResumed':
    case 'broadcastMuted':
    case 'broadcastUnmuted':
    case 'speakerStateChanged':
      if (m.broadcastState) broadcast = m.broadcastState;
      if (broadcast.isPaused || broadcast.isMuted) setLiveCaption('');
      // Muted: what waits to be spoken goes; paused: it waits too.
      if (broadcast.isMuted) voice.clear();
      if (broadcast.isPaused) voice.pause();
      else voice.resume();
      applyVolume();
      break;
    case 'volumeChanged':
      broadcast = { ...broadcast, volume: m.volumeLevel };
      applyVolume();
      break;
    case 'speakerDisconnected':
      speakerConnected = false;
      setLiveCaption('');
      break;
    case 'speakerReconnected':
      speakerConnected = true;
      speakerSeen = true;
      break;
    case 'languageChanged': {
      // The source language's transcript came or went: the same stream
      // (the speaker), and the lines shown are still what was said.
      const transcriptOnly = isSource() && m.targetLanguage === S.targetLanguage && (m.sourceLanguage || S.sourceLanguage) === S.sourceLanguage;
      // Otherwise another language, or the same one switching between its
      // translation and the original: either way another stream.
      S.targetLanguage = m.targetLanguage;
      S.sourceLanguage = m.sourceLanguage || S.sourceLanguage;
      S.untranslated = m.translated === false && S.targetLanguage !== S.sourceLanguage;
      setService(m);
      if (transcriptOnly) {
        loadSession(S.sessionId);
        break;
      }
      clearCaptions();
      captionsSeen = false;
      lastSeq = null; // another stream, other numbers
      fadeNext = true;
      if (player) player.flush();
      el.playerLanguage.value = S.targetLanguage;
      describeMedia();
      loadSession(S.sessionId); // a processor came or went: the served list changed
      break;
    }
    case 'caption':
      onCaption(m);
      return;
    case 'playbackPaused':
      S.playbackPausedAcks++;
      return;
    case 'sessionEnded':
      ended = true;
      wanted = false;
      stopTimers();
      setLiveCaption('');
      voice.disable();
      if (player) player.flush();
      wake.set(false);
      playbackState('none');
      break;
    case 'error':
      S.errors.push(m.code);
      if (m.code === 'SESSION_NOT_FOUND' || m.code === 'INVALID_SESSION_ID') {
        // Gone while we were away (it ended during a reconnect): ended.
        if (everJoined) {
          ended = true;
          stopTimers();
        } else {
          fatal = 'notFound';
        }
      } else if (m.code === 'SESSION_FULL') {
        full = true;
      } else if (m.status === 400 && !everJoined) {
        fatal = 'error';
        fatalDetail = m.message;
      }
      break;
    default:
      return;
  }
  render();
}

function onClose(ws, ev) {
  if (pending && pending.ws === ws) {
    pending = null; // the refresh failed; the old connection carries on
    clearTimeout(refreshTimer);
    if (!active && wanted && !ended && !fatal) scheduleReconnect();
    return;
  }
  if (!active || active.ws !== ws) return; // an old connection after a refresh
  active = null;
  beat.stop();
  if (ended || !wanted || fatal) {
    render();
    return;
  }
  if (ev.code === 4404 || ev.code === 4400) {
    if (!fatal) fatal = ev.code === 4404 ? 'notFound' : 'error';
    render();
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  // A refresh in flight takes over when it completes (or reconnects if not).
  if (pending) return;
  const wait = backoff(attempt, full ? 4000 : 500, full ? 30000 : 15000);
  attempt++;
  retryIn = Math.ceil(wait / 1000);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(() => {
    S.reconnects++;
    connect();
  }, wait);
  render();
}

// startRefresh opens the replacement connection the server asked for. Audio
// flows on both while they overlap; duplicates are dropped by sequence
// number.
function startRefresh() {
  if (pending || !active || !active.joined) return;
  const ws = new WebSocket(wsURL({
    action: 'refreshConnection', sessionId: S.sessionId, role: 'listener',
    targetLanguage: S.targetLanguage, previousConnectionId: active.id, codec: wantCodec,
  }));
  ws.binaryType = 'arraybuffer';
  pending = { ws };
  wire(ws);
  clearTimeout(refreshTimer);
  // A refresh that has not completed in 10 s is given up: closing it lets
  // onClose clean up, and reconnect if the old connection is gone too.
  refreshTimer = setTimeout(() => {
    if (pending && pending.ws === ws) ws.close(1000);
  }, 10000);
}

function finishRefresh(m) {
  clearTimeout(refreshTimer);
  const old = active;
  active = { ws: pending.ws, id: m.connectionId, joined: true };
  pending = null;
  // The new connection may be served by another node, built with or without
  // Opus: it says which codec it sends.
  if (m.codec && m.codec !== audioFormat) setCodec(active.ws, m.codec);
  S.connectionId = m.connectionId;
  S.refreshes++;
  if (serverPaused()) sendJSON(active.ws, { action: 'pausePlayback' });
  if (old && old.ws.readyState <= WebSocket.OPEN) old.ws.close(1000, 'refreshed');
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  attempt = 0;
  beat.start();
  render();
}

function stopTimers() {
  beat.stop();
  clearTimeout(reconnectTimer);
  clearTimeout(refreshTimer);
}

function leave() {
  wanted = false;
  stopTimers();
  for (const c of [active, pending]) if (c) c.ws.close(1000, 'left');
  active = null;
  pending = null;
  if (player) {
    player.flush();
    player.pause();
  }
  wake.set(false);
  clearMediaSession();
  clearCaptions();
  voice.disable();
  S.state = 'idle';
  history.replaceState(null, '', '/');
  showOnly([el.join, el.player], el.join);
  el.id.focus();
}

el.leave.addEventListener('click', leave);

el.toggle.addEventListener('click', () => {
  if (ended || fatal) {
    leave();
    return;
  }
  setUserPaused(!userPaused);
});

// setUserPaused is the listener's Stop/Play (the button, or the lock
// screen's pause and play): the server stops sending while stopped.
function setUserPaused(p) {
  if (!wanted || p === userPaused) return;
  userPaused = p;
  syncServerPlayback();
  if (userPaused) {
    setLiveCaption('');
    voice.clear();
    if (player) {
      player.flush();
      player.pause();
    }
  } else {
    fadeNext = true;
    if (player) player.resume();
  }
  playbackState(userPaused ? 'paused' : 'playing');
  render();
}

el.playerLanguage.addEventListener('change', () => {
  const lang = el.playerLanguage.value;
  setPref(LANG_KEY, lang);
  i18n.setLanguage(lang);
  if (active && active.joined) {
    sendJSON(active.ws, { action: 'changeLanguage', targetLanguage: lang });
  } else {
    S.targetLanguage = lang;
  }
});

window.addEventListener('online', () => {
  if (wanted && !active && reconnectTimer) connect();
});

// ---- State ----

function currentState() {
  if (ended) return 'ended';
  if (fatal) return fatal;
  if (!active || !active.joined) {
    if (full) return 'full';
    return everJoined || attempt > 0 ? 'reconnecting' : 'connecting';
  }
  if (userPaused) return 'stopped';
  if (!speakerConnected) return speakerSeen ? 'speakerReconnecting' : 'waiting';
  if (broadcast.isPaused) return 'paused';
  if (broadcast.isMuted) return 'muted';
  return 'live';
}

const TEXT = {
  connecting: ['lConnecting', 'lConnectingDetail'],
  reconnecting: ['lReconnecting', 'lReconnectingDetail'],
  full: ['lFull', 'lFullDetail'],
  waiting: ['lWaiting', 'lWaitingDetail'],
  live: ['lLive', 'lLiveDetail'],
  paused: ['lPaused', 'lPausedDetail'],
  muted: ['lMuted', 'lMutedDetail'],
  speakerReconnecting: ['lSpeakerReconnecting', 'lSpeakerReconnectingDetail'],
  stopped: ['lStopped', 'lStoppedDetail'],
  ended: ['lEnded', 'lEndedDetail'],
  notFound: ['lNotFound', 'lNotFoundDetail'],
  error: ['lError', ''],
};

function render() {
  const st = currentState();
  S.state = wanted || ended || fatal ? st : 'idle';
  S.speakerConnected = speakerConnected;
  const [title, detail] = TEXT[st];
  const vars = {
    lang: displayName(S.targetLanguage, i18n.lang()) || languageName(languages, S.targetLanguage),
    source: displayName(S.sourceLanguage, i18n.lang()) || languageName(languages, S.sourceLanguage),
    s: retryIn,
  };
  const untranslated = S.untranslated && st === 'live';
  let detailKey = detail;
  if (st === 'live') {
    if (mode === 'text') detailKey = isSource() ? 'lTranscriptDetail' : 'lTextDetail';
    else if (mode === 'voice' && voice.available) detailKey = 'lVoiceDetail';
    else if (untranslated) detailKey = captionsServed ? 'lCaptionsOnlyDetail' : 'lUntranslatedDetail';
  }
  let detailText = detailKey ? i18n.t(detailKey, vars) : '';
  if (st === 'error') detailText = fatalDetail;
  el.status.dataset.state = st;
  if (el.statusText.textContent !== i18n.t(title)) el.statusText.textContent = i18n.t(title);
  if (el.statusDetail.textContent !== detailText) el.statusDetail.textContent = detailText;
  el.untranslated.hidden = !untranslated || captionsServed || mode === 'text';
  renderMode(st, vars);
  const done = st === 'ended' || st === 'notFound' || st === 'error';
  el.toggle.hidden = false;
  el.toggle.setAttribute('aria-pressed', userPaused ? 'true' : 'false');
  el.toggle.textContent = done ? i18n.t('leave') : userPaused ? `▶ ${i18n.t('play')}` : `■ ${i18n.t('pause')}`;
  // The ended screen's button leaves: a quiet secondary button, never the
  // primary colours under a secondary label (a tap leaves :hover behind).
  el.toggle.classList.toggle('secondary', done);
  el.toggle.classList.toggle('primary', !done);
  el.leave.hidden = done;
  $('volume-field').hidden = done;
  $('player-language-field').hidden = done;
  $('options').hidden = done;
  // Following by text makes sense where text comes: translated captions
  // are announced, or a caption (a transcript) arrived.
  el.modeField.hidden = done || !(captionsServed || captionsSeen || mode === 'text');
  el.activity.parentElement.hidden = done;
  document.title = `${i18n.t(title)} · ${S.sessionId || 'Pentecost'}`;
  if (!wanted && !ended && !fatal) document.title = i18n.t('listenTitle');
}

// renderMode shows how the listener follows: the choice (the voice only
// where the language has captions but no translated audio: never for the
// source language, whose listeners hear the speaker), a badge in the
// status, and a note when the phone has no voice for the language. For the
// source language the captions are the transcript, and say so.
function renderMode(st, vars) {
  const offered = voiceOffered();
  const source = isSource();
  S.captionsKind = source ? 'transcript' : 'captions';
  setKey(el.captionsTitle, source ? 'lTranscript' : 'lCaptions');
  setKey(el.modeTextLabel, source ? 'lModeTranscript' : 'lModeText');
  setKey(el.modeTextHint, source ? 'lModeTranscriptHint' : 'lModeTextHint');
  el.modeVoiceField.hidden = !offered;
  el.modeAudio.checked = mode === 'audio';
  el.modeVoice.checked = mode === 'voice';
  el.modeText.checked = mode === 'text';
  let audioHint = 'lModeAudioHint';
  if (S.targetLanguage !== S.sourceLanguage) audioHint = audioTranslated ? 'lModeAudioTranslatedHint' : 'lModeAudioOriginalHint';
  setText(el.modeAudioHint, i18n.t(audioHint, vars));
  setText(el.modeVoiceHint, i18n.t('lModeVoiceHint', vars));
  let note = '';
  if (mode === 'voice' && !voice.supported) note = i18n.t('lVoiceUnsupported');
  else if (mode === 'voice' && !voice.available) note = i18n.t('lVoiceNone', vars);
  setText(el.voiceNote, note);
  el.voiceNote.hidden = note === '';
  let badge = '';
  if (st === 'live' || st === 'paused' || st === 'muted') {
    if (mode === 'text') badge = i18n.t(source ? 'lTranscriptBadge' : 'lTextBadge');
    else if (mode === 'voice' && voice.available) badge = i18n.t('lVoiceBadge', vars);
    else if (captionsServed && !audioTranslated) badge = i18n.t('lCaptionsBadge', vars);
  }
  setText(el.modeBadge, badge);
  el.modeBadge.hidden = badge === '';
  S.voiceAvailable = voice.available;
  S.voiceName = voice.voiceName;
  S.voiceSpeaking = voice.speaking;
  S.voiceSpoken = voice.spoken;
  S.voiceEnded = voice.ended;
  S.voiceDropped = voice.dropped;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// setKey gives a node whose text i18n.apply fills (data-i18n) another key.
function setKey(node, key) {
  node.dataset.i18n = key;
  setText(node, i18n.t(key));
}

// isSource: the listener follows the speaker's own language, whose captions
// are the transcript.
function isSource() {
  return S.sourceLanguage !== '' && S.targetLanguage === S.sourceLanguage;
}

// ---- Start-up ----

async function init() {
  const m = location.pathname.match(/^\/listen\/([^/]+)$/);
  if (m) {
    el.id.value = normalizeSessionId(decodeURIComponent(m[1]));
  }
  renderCheck();
  try {
    languages = await fetchLanguages();
  } catch {
    el.joinError.textContent = i18n.t('languagesUnavailable');
    el.joinError.hidden = false;
    languages = [{ code: 'en', name: 'English', nativeName: 'English' }];
  }
  const lang = languageFromBrowser();
  fillLanguages(el.language, languages, lang);
  i18n.setLanguage(lang);
  if (checkSessionId(el.id.value) === 'ok') {
    $('listen').focus();
    loadSession(el.id.value);
  } else {
    el.id.focus();
  }
  S.ready = true;
}

init();
