// The speaker app: sign in with a token, create or resume a session, capture
// the microphone as 16 kHz PCM16 and broadcast it. See docs/webapps.md.
import * as i18n from './i18n.js';
import { encodeQR, qrSVG } from './qr.js';
import {
  $, checkSessionId, normalizeSessionId, wsURL, backoff, stats, fetchLanguages, fillLanguages,
  browserLanguage, languageName, decodeJWT, heartbeat, sendJSON, showOnly,
} from './common.js';

const TOKEN_KEY = 'pentecost.speakerToken';
const SESSION_KEY = 'pentecost.speakerSession';
const CHUNK_MS = 40;
const MAX_BUFFERED = 256 * 1024; // bytes queued in the socket before chunks are dropped

const S = stats({
  app: 'speaker',
  sessionId: '',
  connectionId: '',
  chunksCaptured: 0,
  chunksSent: 0,
  chunksDropped: 0,
  bytesSent: 0,
  level: 0,
  listenerCount: 0,
  languageDistribution: {},
  isPaused: false,
  isMuted: false,
  micTrack: '',
});

const el = {
  signin: $('signin'), signinForm: $('signin-form'), token: $('token'), signinError: $('signin-error'),
  setup: $('setup'), tokenInfo: $('token-info'), setupError: $('setup-error'), resumeLast: $('resume-last'),
  createForm: $('create-form'), source: $('source-language'), tier: $('tier'), start: $('start'),
  resumeForm: $('resume-form'), resumeId: $('resume-id'), signout: $('signout'), who: $('who'),
  live: $('live'), conn: $('conn'), connText: $('conn-text'), connDetail: $('conn-detail'),
  sessionId: $('session-id'), qr: $('qr'), link: $('link'), copy: $('copy'), copyStatus: $('copy-status'),
  level: $('level'), levelBar: $('level-bar'), pause: $('pause'), mute: $('mute'), count: $('listener-count'),
  distribution: $('distribution'), end: $('end'), replaced: $('replaced'), takeover: $('takeover'),
  ended: $('ended'), endedDetail: $('ended-detail'), newSession: $('new-session'),
  dialog: $('end-dialog'), uiLang: $('ui-lang'),
};
const sections = [el.signin, el.setup, el.live, el.ended];

let token = '';
let languages = [];
let cap = null; // {ctx, stream, node}
let active = null; // {ws, id, joined}
let pending = null; // refresh connection
let wanted = false;
let ended = false;
let replaced = false;
let attempt = 0;
let retryIn = 0;
let reconnectTimer = 0;
const beat = heartbeat(() => active);
let refreshTimer = 0;
let broadcast = { isPaused: false, isMuted: false };
let wakeLock = null;
let lastLevelAria = 0;

i18n.initLanguage();
i18n.fillSwitcher(el.uiLang);
i18n.apply();
i18n.onLanguageChange(() => {
  i18n.apply();
  renderToken();
  render();
  renderListeners();
  if (S.sessionId) renderShare();
});

// ---- Token ----

function storage() {
  try { return window.sessionStorage; } catch { return null; }
}

// The start-up link carries the token in the fragment (#token=...), which is
// never sent to the server in HTTP requests. Keep it for this tab and take
// it out of the address bar, the history and any screenshot.
function takeFragmentToken() {
  const h = new URLSearchParams(location.hash.slice(1));
  const tok = h.get('token');
  if (tok) {
    storage()?.setItem(TOKEN_KEY, tok.trim());
    history.replaceState(null, '', location.pathname + location.search);
  }
}

function checkToken(tok) {
  const p = decodeJWT(tok);
  if (!p) return { ok: false, msg: i18n.t('tokenMalformed') };
  if (typeof p.exp === 'number' && p.exp * 1000 < Date.now()) return { ok: false, msg: i18n.t('tokenExpired') };
  return { ok: true, payload: p };
}

function renderToken() {
  const c = token ? checkToken(token) : null;
  if (!c || !c.ok) {
    el.who.hidden = true;
    el.tokenInfo.textContent = '';
    return;
  }
  const sub = c.payload.sub || '?';
  el.who.textContent = i18n.t('signedInAs', { sub });
  el.who.hidden = false;
  const until = typeof c.payload.exp === 'number'
    ? i18n.t('tokenUntil', { time: new Date(c.payload.exp * 1000).toLocaleString(i18n.lang(), { dateStyle: 'medium', timeStyle: 'short' }) })
    : '';
  el.tokenInfo.textContent = `${i18n.t('signedInAs', { sub })}. ${until}`;
}

function signIn(tok, quiet = false) {
  const c = checkToken(tok);
  if (!c.ok) {
    if (!quiet) {
      el.signinError.textContent = c.msg;
      el.signinError.hidden = false;
    }
    showSignIn(quiet ? c.msg : '');
    return false;
  }
  token = tok;
  storage()?.setItem(TOKEN_KEY, tok);
  el.signinError.hidden = true;
  renderToken();
  showSetup();
  return true;
}

function showSignIn(msg) {
  token = '';
  renderToken();
  if (msg) {
    el.signinError.textContent = msg;
    el.signinError.hidden = false;
  }
  showOnly(sections, el.signin);
  S.state = 'signedOut';
  el.token.focus();
}

el.signinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn(el.token.value.replace(/\s+/g, ''));
});

el.signout.addEventListener('click', () => {
  storage()?.removeItem(TOKEN_KEY);
  storage()?.removeItem(SESSION_KEY);
  el.token.value = '';
  showSignIn('');
});

// ---- Setup ----

function showSetup(error = '') {
  showOnly(sections, el.setup);
  el.setupError.textContent = error;
  el.setupError.hidden = !error;
  const last = storage()?.getItem(SESSION_KEY) || '';
  el.resumeLast.hidden = !last;
  el.resumeLast.dataset.id = last;
  el.resumeLast.textContent = last ? i18n.t('resumeLast', { id: last }) : '';
  S.state = 'setup';
  if (error) el.setupError.focus();
  else if (last) el.resumeLast.focus();
}

el.createForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  begin({ action: 'createSession', sourceLanguage: el.source.value, qualityTier: el.tier.value });
});

el.resumeForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = normalizeSessionId(el.resumeId.value.trim());
  if (checkSessionId(id) !== 'ok') {
    el.resumeId.setAttribute('aria-invalid', 'true');
    el.resumeId.focus();
    return;
  }
  el.resumeId.setAttribute('aria-invalid', 'false');
  begin({ sessionId: id });
});

el.resumeLast.addEventListener('click', () => begin({ sessionId: el.resumeLast.dataset.id }));

// ---- Capture ----

// startCapture opens the microphone and the capture worklet. The
// AudioContext is made in the click handler (a user gesture).
async function startCapture() {
  if (cap) {
    await cap.ctx.resume();
    return;
  }
  if (!window.AudioWorkletNode || !window.AudioContext || !navigator.mediaDevices) throw new Error(i18n.t('errNoWorklet'));
  const ctx = new AudioContext({ latencyHint: 'interactive' });
  ctx.resume();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      video: false,
    });
    await ctx.audioWorklet.addModule('/static/worklets/capture.js');
  } catch (e) {
    ctx.close();
    if (stream) for (const t of stream.getTracks()) t.stop();
    throw new Error(i18n.t('errMic', { msg: e.message || e.name }));
  }
  const src = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'pentecost-capture', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { chunkMs: CHUNK_MS },
  });
  // The worklet must be pulled by the graph to run; a silent gain keeps the
  // microphone out of the speakers.
  const sink = ctx.createGain();
  sink.gain.value = 0;
  src.connect(node).connect(sink).connect(ctx.destination);
  node.port.onmessage = (e) => onChunk(e.data);
  const track = stream.getAudioTracks()[0];
  S.micTrack = track ? track.label : '';
  cap = { ctx, stream, node, src };
  await ctx.resume();
}

function stopCapture() {
  if (!cap) return;
  for (const t of cap.stream.getTracks()) t.stop();
  cap.ctx.close();
  cap = null;
  setLevel(0);
}

function setLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  const v = Math.max(0, Math.min(1, (db + 60) / 60));
  S.level = Math.round(v * 100);
  el.levelBar.style.transform = `scaleX(${v})`;
  el.level.dataset.hot = v > 0.92 ? 'true' : 'false';
  const now = performance.now();
  if (now - lastLevelAria > 500) {
    lastLevelAria = now;
    el.level.setAttribute('aria-valuenow', String(S.level));
  }
}

function onChunk(m) {
  if (m.type !== 'chunk') return;
  S.chunksCaptured++;
  setLevel(broadcast.isMuted ? 0 : m.rms);
  if (!active || !active.joined || broadcast.isPaused || broadcast.isMuted || replaced) return;
  const ws = active.ws;
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED) {
    S.chunksDropped++; // the network is stalled: live audio, drop it
    return;
  }
  ws.send(m.pcm);
  S.chunksSent++;
  S.bytesSent += m.pcm.byteLength;
}

// ---- Connections ----

let intent = null; // the query of the first connection: create or resume

async function begin(q) {
  el.setupError.hidden = true;
  try {
    await startCapture();
  } catch (e) {
    showSetup(e.message);
    return;
  }
  intent = q;
  wanted = true;
  ended = false;
  replaced = false;
  attempt = 0;
  S.sessionId = q.sessionId || '';
  broadcast = { isPaused: false, isMuted: false };
  S.languageDistribution = {};
  S.listenerCount = 0;
  el.sessionId.textContent = S.sessionId;
  el.qr.replaceChildren();
  el.link.value = '';
  renderListeners();
  showOnly(sections, el.live);
  open(q);
  keepAwake();
  render();
}

function open(q) {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  const ws = new WebSocket(wsURL({ ...q, token }));
  active = { ws, id: '', joined: false };
  wire(ws);
}

function wire(ws) {
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') return;
    const mine = (active && active.ws === ws) || (pending && pending.ws === ws);
    if (!mine) return;
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    onMessage(ws, m);
  };
  ws.onclose = (ev) => onClose(ws, ev);
}

function joined(m) {
  active.id = m.connectionId;
  active.joined = true;
  S.connectionId = m.connectionId;
  S.sessionId = m.sessionId;
  storage()?.setItem(SESSION_KEY, m.sessionId);
  attempt = 0;
  intent = { sessionId: m.sessionId }; // from now on, reconnects attach
  if (m.broadcastState) broadcast = m.broadcastState;
  renderShare();
  beat.start();
  sendJSON(active.ws, { action: 'getSessionStatus' });
}

function onMessage(ws, m) {
  switch (m.type) {
    case 'sessionCreated':
    case 'sessionJoined':
      if (!active || active.ws !== ws) return;
      joined(m);
      if (typeof m.listenerCount === 'number') S.listenerCount = m.listenerCount;
      break;
    case 'connectionRefreshComplete':
      if (pending && pending.ws === ws) finishRefresh(m);
      break;
    case 'connectionRefreshRequired':
    case 'connectionWarning':
      if (active && active.ws === ws) startRefresh();
      break;
    case 'connectionReplaced':
      replaced = true;
      wanted = false;
      stopTimers();
      break;
    case 'broadcastPaused':
    case 'broadcastResumed':
    case 'broadcastMuted':
    case 'broadcastUnmuted':
    case 'speakerStateChanged':
      if (m.broadcastState) broadcast = m.broadcastState;
      if (cap) for (const t of cap.stream.getAudioTracks()) t.enabled = !broadcast.isMuted;
      break;
    case 'sessionStatus':
      S.listenerCount = m.listenerCount;
      S.languageDistribution = m.languageDistribution || {};
      if (m.broadcastState) broadcast = m.broadcastState;
      renderListeners();
      break;
    case 'sessionEnded':
      finish();
      return;
    case 'error':
      S.errors.push(m.code);
      onError(m);
      break;
    default:
      return;
  }
  render();
}

let lastError = null;

function onError(m) {
  lastError = m;
  // Errors in reply to messages (rate limits, say) do not close; the ones
  // that close come with a 4xxx close code handled in onClose.
}

function onClose(ws, ev) {
  if (pending && pending.ws === ws) {
    pending = null;
    clearTimeout(refreshTimer);
    if (!active && wanted) scheduleReconnect();
    return;
  }
  if (!active || active.ws !== ws) return;
  const wasJoined = active.joined;
  active = null;
  beat.stop();
  if (ended) return;
  if (replaced) {
    render();
    return;
  }
  if (!wanted) return;
  const err = lastError;
  lastError = null;
  const msg = err ? err.message : ev.reason;
  switch (ev.code) {
    case 4401:
      fail();
      showSignIn(i18n.t('errAuth', { msg }));
      return;
    case 4403:
      fail();
      showSetup(err && err.code === 'FORBIDDEN' ? i18n.t('errForbidden') : i18n.t('errServer', { msg }));
      return;
    case 4404:
      storage()?.removeItem(SESSION_KEY);
      fail();
      showSetup(i18n.t('errNotFound', { id: S.sessionId }));
      return;
    case 4400:
    case 4413:
      fail();
      showSetup(i18n.t('errServer', { msg }));
      return;
    default:
  }
  if (!wasJoined && intent && intent.action === 'createSession') {
    // Never retry a creation blindly: it could make a second session.
    fail();
    showSetup(i18n.t('errServer', { msg: msg || String(ev.code) }));
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (pending) return;
  const wait = backoff(attempt, 400, 5000);
  attempt++;
  retryIn = Math.ceil(wait / 1000);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(() => {
    S.reconnects++;
    open(intent);
    render();
  }, wait);
  render();
}

// startRefresh moves the broadcast to a new connection before the server's
// maximum connection age; audio switches to it once it is confirmed.
function startRefresh() {
  if (pending || !active || !active.joined) return;
  const ws = new WebSocket(wsURL({ action: 'refreshConnection', sessionId: S.sessionId, role: 'speaker', token }));
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
  attempt = 0;
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  if (old && old.ws.readyState <= WebSocket.OPEN) old.ws.close(1000, 'refreshed');
  beat.start();
}

function stopTimers() {
  beat.stop();
  clearTimeout(reconnectTimer);
  clearTimeout(refreshTimer);
}

// fail stops a broadcast that cannot go on (auth, not found).
function fail() {
  wanted = false;
  stopTimers();
  stopCapture();
  releaseWake();
  for (const c of [active, pending]) if (c) c.ws.close(1000);
  active = null;
  pending = null;
}

function finish() {
  ended = true;
  wanted = false;
  stopTimers();
  stopCapture();
  releaseWake();
  storage()?.removeItem(SESSION_KEY);
  S.state = 'ended';
  showOnly(sections, el.ended);
  $('ended-title').focus();
}

// ---- Controls ----

el.pause.addEventListener('click', () => {
  if (active) sendJSON(active.ws, { action: broadcast.isPaused ? 'resumeBroadcast' : 'pauseBroadcast' });
});

el.mute.addEventListener('click', () => {
  if (active) sendJSON(active.ws, { action: broadcast.isMuted ? 'unmuteBroadcast' : 'muteBroadcast' });
});

el.end.addEventListener('click', () => {
  if (typeof el.dialog.showModal === 'function') el.dialog.showModal();
  else endSession();
});

el.dialog.addEventListener('close', () => {
  if (el.dialog.returnValue === 'end') endSession();
  el.dialog.returnValue = '';
});

function endSession() {
  if (active && sendJSON(active.ws, { action: 'endSession' })) return;
  // Not connected: end it over HTTP.
  fetch(`/sessions/${encodeURIComponent(S.sessionId)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })
    .finally(finish);
}

el.takeover.addEventListener('click', () => {
  replaced = false;
  wanted = true;
  attempt = 0;
  open({ sessionId: S.sessionId });
  render();
});

el.newSession.addEventListener('click', () => showSetup());

el.copy.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(el.link.value);
    el.copyStatus.textContent = i18n.t('copied');
  } catch {
    el.link.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { /* unsupported */ }
    el.copyStatus.textContent = ok ? i18n.t('copied') : i18n.t('copyFailed');
  }
});

el.link.addEventListener('focus', () => el.link.select());

// Keep a phone's screen (and so its microphone) awake while broadcasting.
async function keepAwake() {
  if (!navigator.wakeLock || document.visibilityState !== 'visible') return;
  try { wakeLock = await navigator.wakeLock.request('screen'); } catch { wakeLock = null; }
}

function releaseWake() {
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && wanted && !wakeLock) keepAwake();
});

window.addEventListener('online', () => {
  if (wanted && !active && reconnectTimer) open(intent);
});

// ---- Rendering ----

function renderShare() {
  const id = S.sessionId;
  el.sessionId.textContent = id;
  el.sessionId.style.setProperty('--len', String(Math.max(8, id.length)));
  const url = `${location.origin}/listen/${id}`;
  el.link.value = url;
  let svg;
  try {
    svg = qrSVG(encodeQR(url, 'M'), { label: i18n.t('qrLabel', { url }) });
  } catch {
    svg = null; // an origin too long for version 10: the link still works
  }
  el.qr.replaceChildren(...(svg ? [svg] : []));
}

function renderListeners() {
  const n = S.listenerCount || 0;
  el.count.textContent = n ? i18n.t('listenerCount', { n }) : i18n.t('noListeners');
  const entries = Object.entries(S.languageDistribution || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  el.distribution.replaceChildren(...entries.map(([code, count]) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = languageName(languages, code, i18n.lang());
    const num = document.createElement('strong');
    num.textContent = String(count);
    li.append(name, num);
    li.dataset.lang = code;
    return li;
  }));
}

function currentState() {
  if (ended) return 'ended';
  if (replaced) return 'replaced';
  if (!active || !active.joined) return attempt > 0 || S.reconnects > 0 ? 'reconnecting' : 'connecting';
  if (broadcast.isPaused) return 'paused';
  if (broadcast.isMuted) return 'muted';
  return 'live';
}

const CONN_TEXT = {
  connecting: 'sConnecting', reconnecting: 'sReconnecting', live: 'sLive', paused: 'sPaused',
  muted: 'sMuted', ended: 'sEnded', replaced: 'sReplaced',
};

function render() {
  if (!wanted && !ended && !replaced) return;
  const st = currentState();
  S.state = st;
  S.isPaused = !!broadcast.isPaused;
  S.isMuted = !!broadcast.isMuted;
  el.conn.dataset.state = st;
  const text = i18n.t(CONN_TEXT[st]);
  if (el.connText.textContent !== text) el.connText.textContent = text;
  const detail = st === 'reconnecting' && attempt > 0 ? i18n.t('sReconnectingDetail', { s: retryIn }) : '';
  if (el.connDetail.textContent !== detail) el.connDetail.textContent = detail;
  el.pause.textContent = broadcast.isPaused ? `▶ ${i18n.t('resumeBtn')}` : `❚❚ ${i18n.t('pauseBtn')}`;
  el.pause.setAttribute('aria-pressed', broadcast.isPaused ? 'true' : 'false');
  el.mute.textContent = broadcast.isMuted ? i18n.t('unmuteBtn') : i18n.t('muteBtn');
  el.mute.setAttribute('aria-pressed', broadcast.isMuted ? 'true' : 'false');
  const controls = st !== 'connecting' && st !== 'reconnecting' && st !== 'replaced';
  el.pause.disabled = !controls;
  el.mute.disabled = !controls;
  el.replaced.hidden = st !== 'replaced';
  document.title = S.sessionId ? `${text} · ${S.sessionId}` : i18n.t('speakTitle');
}

// ---- Start-up ----

async function init() {
  takeFragmentToken();
  try {
    languages = await fetchLanguages();
  } catch {
    languages = [{ code: 'en', name: 'English', nativeName: 'English' }];
  }
  fillLanguages(el.source, languages, browserLanguage(languages));
  const tok = storage()?.getItem(TOKEN_KEY) || '';
  if (tok) {
    el.token.value = tok;
    signIn(tok, true);
  } else {
    showSignIn('');
  }
  S.ready = true;
}

init();
