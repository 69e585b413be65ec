// The listener app: join a session by ID, pick a language, play the live
// audio through an AudioWorklet jitter buffer. See docs/webapps.md.
import * as i18n from './i18n.js';
import {
  $, checkSessionId, normalizeSessionId, wsURL, backoff, stats, fetchLanguages,
  fillLanguages, browserLanguage, languageName, displayName, heartbeat, sendJSON, showOnly,
} from './common.js';

const PCM_RATE = 16000;
const LANG_KEY = 'pentecost.listenLanguage';

// Counters for the browser tests and for curious people (window.pentecostStats).
const S = stats({
  app: 'listener',
  sessionId: '',
  targetLanguage: '',
  sourceLanguage: '',
  connectionId: '',
  framesReceived: 0, // unique audio frames received
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
  captions: 0,
  audioContextState: '',
});

const el = {
  join: $('join'), player: $('player'), form: $('join-form'), id: $('session-id'), check: $('session-id-check'),
  language: $('language'), joinError: $('join-error'), sessionLabel: $('player-session'), status: $('status'),
  statusText: $('status-text'), statusDetail: $('status-detail'), untranslated: $('untranslated'), caption: $('caption'),
  toggle: $('toggle'), volume: $('volume'), playerLanguage: $('player-language'), leave: $('leave'), uiLang: $('ui-lang'),
};

let languages = [];
let audio = null; // {ctx, node, gain}
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

// ---- UI language and the form ----

i18n.initLanguage();
i18n.fillSwitcher(el.uiLang);
i18n.apply();
i18n.onLanguageChange(() => { i18n.apply(); renderCheck(); render(); });

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
});

function languageFromBrowser() {
  let stored = '';
  try { stored = localStorage.getItem(LANG_KEY) || ''; } catch { /* private mode */ }
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

// startAudio creates the AudioContext and the playback worklet. It runs in
// the click handler: browsers let audio start only after a gesture.
function startAudio() {
  if (audio) {
    audio.ctx.resume();
    return audio.ready;
  }
  if (!window.AudioWorkletNode || !window.AudioContext) throw new Error(i18n.t('lNoAudio'));
  if (navigator.audioSession) {
    try { navigator.audioSession.type = 'playback'; } catch { /* older Safari */ }
  }
  let ctx;
  try {
    // 16 kHz matches the stream: no resampling in the worklet, the browser
    // does it (well) on the way to the speakers.
    ctx = new AudioContext({ sampleRate: PCM_RATE, latencyHint: 'interactive' });
  } catch {
    ctx = new AudioContext({ latencyHint: 'interactive' });
  }
  ctx.resume();
  const a = { ctx, node: null, gain: null, ready: null };
  a.ready = ctx.audioWorklet.addModule('/static/worklets/playback.js').then(() => {
    const node = new AudioWorkletNode(ctx, 'pentecost-playback', {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { rate: PCM_RATE },
    });
    const gain = ctx.createGain();
    node.connect(gain).connect(ctx.destination);
    node.port.onmessage = (e) => {
      const m = e.data;
      if (m.type !== 'stats') return;
      S.samplesPlayed = m.samplesPlayed;
      S.framesPlayed = m.chunksPlayed;
      S.underruns = m.underruns;
      S.skips = m.skips;
      S.bufferedMs = m.bufferedMs;
      S.targetMs = m.targetMs;
      S.playedPeak = Math.max(S.playedPeak, m.peak);
    };
    a.node = node;
    a.gain = gain;
    applyVolume();
  });
  ctx.onstatechange = () => { S.audioContextState = ctx.state; };
  S.audioContextState = ctx.state;
  audio = a;
  return a.ready;
}

function applyVolume() {
  if (!audio || !audio.gain) return;
  const v = (Number(el.volume.value) / 100) * (typeof broadcast.volume === 'number' ? broadcast.volume : 1);
  audio.gain.gain.setTargetAtTime(v, audio.ctx.currentTime, 0.02);
}

function post(msg, transfer) {
  if (audio && audio.node) audio.node.port.postMessage(msg, transfer || []);
}

el.volume.addEventListener('input', applyVolume);

// onAudio handles one binary frame: the 16-byte header of docs/protocol.md
// section 5, then PCM16 little-endian at 16 kHz.
function onAudio(buf) {
  if (buf.byteLength < 16) return;
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
  const untranslated = kind === 0 && S.targetLanguage !== S.sourceLanguage;
  if (untranslated !== S.untranslated) {
    S.untranslated = untranslated;
    render();
  }
  if (userPaused) return;
  const n = (buf.byteLength - 16) >> 1;
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = dv.getInt16(16 + 2 * i, true) / 32768;
  post({ type: 'chunk', samples: f, rate: PCM_RATE, gap }, [f.buffer]);
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
  try { localStorage.setItem(LANG_KEY, lang); } catch { /* private mode */ }
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
  el.sessionLabel.textContent = id;
  fillLanguages(el.playerLanguage, languages, lang);
  showOnly([el.join, el.player], el.player);
  i18n.setLanguage(lang);
  connect();
  render();
  el.statusText.focus();
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  const ws = new WebSocket(wsURL({ sessionId: S.sessionId, targetLanguage: S.targetLanguage }));
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
      S.untranslated = m.translated === false && S.targetLanguage !== S.sourceLanguage;
      if (m.audioFormat && m.audioFormat !== 'pcm16') {
        fatal = 'error';
        fatalDetail = i18n.t('lFormat', { format: m.audioFormat });
        ws.close(1000);
      }
      // The server does not remember a pause across connections.
      if (userPaused) sendJSON(ws, { action: 'pausePlayback' });
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
      applyVolume();
      break;
    case 'volumeChanged':
      broadcast = { ...broadcast, volume: m.volumeLevel };
      applyVolume();
      break;
    case 'speakerDisconnected':
      speakerConnected = false;
      break;
    case 'speakerReconnected':
      speakerConnected = true;
      speakerSeen = true;
      break;
    case 'languageChanged':
      S.targetLanguage = m.targetLanguage;
      S.sourceLanguage = m.sourceLanguage || S.sourceLanguage;
      S.untranslated = m.translated === false && S.targetLanguage !== S.sourceLanguage;
      lastSeq = null; // another stream, other numbers
      fadeNext = true;
      post({ type: 'flush' });
      el.playerLanguage.value = S.targetLanguage;
      break;
    case 'caption':
      S.captions++;
      el.caption.textContent = m.text;
      el.caption.hidden = !m.text;
      return;
    case 'sessionEnded':
      ended = true;
      wanted = false;
      stopTimers();
      post({ type: 'flush' });
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
    targetLanguage: S.targetLanguage, previousConnectionId: active.id,
  }));
  ws.binaryType = 'arraybuffer';
  pending = { ws };
  wire(ws);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (pending && pending.ws === ws) {
      pending = null;
      ws.close(1000);
    }
  }, 10000);
}

function finishRefresh(m) {
  clearTimeout(refreshTimer);
  const old = active;
  active = { ws: pending.ws, id: m.connectionId, joined: true };
  pending = null;
  S.connectionId = m.connectionId;
  S.refreshes++;
  if (userPaused) sendJSON(active.ws, { action: 'pausePlayback' });
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
  post({ type: 'flush' });
  S.state = 'idle';
  history.replaceState(null, '', '/');
  showOnly([el.join, el.player], el.join);
  el.id.focus();
}

el.leave.addEventListener('click', leave);

el.toggle.addEventListener('click', () => {
  if (ended) {
    leave();
    return;
  }
  if (audio) audio.ctx.resume();
  userPaused = !userPaused;
  if (active) sendJSON(active.ws, { action: userPaused ? 'pausePlayback' : 'resumePlayback' });
  if (userPaused) post({ type: 'flush' });
  else fadeNext = true;
  render();
});

el.playerLanguage.addEventListener('change', () => {
  const lang = el.playerLanguage.value;
  try { localStorage.setItem(LANG_KEY, lang); } catch { /* private mode */ }
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
  let detailText = detail ? i18n.t(untranslated ? 'lUntranslatedDetail' : detail, vars) : '';
  if (st === 'error') detailText = fatalDetail;
  el.status.dataset.state = st;
  if (el.statusText.textContent !== i18n.t(title)) el.statusText.textContent = i18n.t(title);
  if (el.statusDetail.textContent !== detailText) el.statusDetail.textContent = detailText;
  el.untranslated.hidden = !untranslated;
  const done = st === 'ended' || st === 'notFound' || st === 'error';
  el.toggle.hidden = false;
  el.toggle.setAttribute('aria-pressed', userPaused ? 'true' : 'false');
  el.toggle.textContent = done ? i18n.t('leave') : userPaused ? `▶ ${i18n.t('play')}` : `■ ${i18n.t('pause')}`;
  el.toggle.classList.toggle('secondary', done);
  el.leave.hidden = done;
  $('volume-field').hidden = done;
  $('player-language-field').hidden = done;
  document.title = `${i18n.t(title)} · ${S.sessionId || 'Pentecost'}`;
  if (!wanted && !ended && !fatal) document.title = i18n.t('listenTitle');
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
  if (checkSessionId(el.id.value) === 'ok') $('listen').focus();
  else el.id.focus();
  S.ready = true;
}

init();
