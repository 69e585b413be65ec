// The speaker app: sign in with a token, create or resume a session, capture
// the microphone as 16 kHz PCM16 and broadcast it, encoded as Opus where the
// browser can (encode.js). See docs/webapps.md.
import * as i18n from './i18n.js';
import { encodeQR, qrSVG } from './qr.js';
import { opusConfig, OpusEncoderStage } from './encode.js';
import { screenWake } from './background.js';
import {
  $, checkSessionId, normalizeSessionId, wsURL, backoff, stats, fetchLanguages, fillLanguages,
  browserLanguage, languageName, decodeJWT, heartbeat, sendJSON, showOnly, levelOf, contextToWall,
  pref, setPref,
} from './common.js';

const TOKEN_KEY = 'pentecost.speakerToken';
const SESSION_KEY = 'pentecost.speakerSession';
const MIC_KEY = 'pentecost.micDevice';
// Latency taps (docs/webapps.md, "Latency"): ?taps on the URL records when
// loud onsets reach the capture worklet, for the mouth-to-ear browser test.
const TAPS = new URLSearchParams(location.search).has('taps');
if (TAPS) window.pentecostTaps = { mouth: [] };
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
  micTesting: false,
  secureContext: window.isSecureContext,
  linkSource: '', // public, lan, loopback (a warning shows) or origin
  linkBases: [], // the addresses offered for the listener link
  countStale: false, // the listener figures are the last known (disconnected)
  codec: '', // what the session takes: pcm16 or opus (sessionCreated/sessionJoined)
  packetMs: 0, // the session's packet duration
  encoder: '', // 'webcodecs' while Opus is encoded here
  encoderError: '',
  encoderRestarts: 0,
});

const MAX_ENCODER_RESTARTS = 5;

// enc is the Opus encoder of an Opus session; chunks wait for it (dropped)
// while it is being set up.
let enc = null;
let encFor = ''; // the session and packet duration enc was made for

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
  insecure: $('insecure'), insecureWhy: $('insecure-why'), insecureLocal: $('insecure-local'),
  micDevice: $('mic-device'), micTest: $('mic-test'), testLevel: $('test-level'), testLevelBar: $('test-level-bar'),
  linkWarning: $('link-warning'), linkChoice: $('link-choice'), linkAddress: $('link-address'),
  countStale: $('count-stale'), listeners: $('listeners'),
};
const sections = [el.signin, el.setup, el.live, el.ended];

let token = '';
let languages = [];
let cap = null; // {ctx, stream, node, device}
let links = null; // GET /links: {publicUrl, lanUrls}
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
// Keeps a phone's screen (and so its microphone) awake while broadcasting.
const wake = screenWake();
let lastLevelAria = 0;

i18n.initLanguage();
i18n.fillSwitcher(el.uiLang);
i18n.apply();
i18n.onLanguageChange(() => {
  i18n.apply();
  renderToken();
  renderInsecure();
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

// startCapture opens the microphone (the chosen device) and the capture
// worklet. The AudioContext is made in a click handler (a user gesture).
// The microphone test and the broadcast share it: a broadcast started after
// a test keeps the open microphone.
async function startCapture() {
  const device = el.micDevice.value;
  if (cap && cap.device === device) {
    await cap.ctx.resume();
    return;
  }
  stopCapture();
  if (!window.isSecureContext) throw new Error(i18n.t('errInsecure'));
  if (!window.AudioContext || !navigator.mediaDevices) throw new Error(i18n.t('errNoWorklet'));
  const ctx = new AudioContext({ latencyHint: 'interactive' });
  ctx.resume();
  if (!ctx.audioWorklet) {
    ctx.close();
    throw new Error(i18n.t('errNoWorklet'));
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: device ? { exact: device } : undefined,
        echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1,
      },
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
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { chunkMs: CHUNK_MS, taps: TAPS },
  });
  // The worklet must be pulled by the graph to run; a silent gain keeps the
  // microphone out of the speakers.
  const sink = ctx.createGain();
  sink.gain.value = 0;
  src.connect(node).connect(sink).connect(ctx.destination);
  node.port.onmessage = (e) => onChunk(e.data);
  const track = stream.getAudioTracks()[0];
  S.micTrack = track ? track.label : '';
  cap = { ctx, stream, node, src, device };
  await ctx.resume();
  listDevices(); // labels are readable once the microphone is allowed
}

function stopCapture() {
  if (!cap) return;
  for (const t of cap.stream.getTracks()) t.stop();
  cap.ctx.close();
  cap = null;
  setLevel(0);
}

// listDevices fills the microphone choice. Before the first permission
// browsers hide the labels (and often all but one device).
async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  let devices = [];
  try { devices = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
  const inputs = devices.filter((d) => d.kind === 'audioinput' && d.deviceId && d.deviceId !== 'default');
  const current = el.micDevice.value || pref(MIC_KEY);
  const opts = [new Option(i18n.t('micDefault'), '')];
  inputs.forEach((d, i) => opts.push(new Option(d.label || i18n.t('micNumbered', { n: i + 1 }), d.deviceId)));
  el.micDevice.replaceChildren(...opts);
  el.micDevice.value = inputs.some((d) => d.deviceId === current) ? current : '';
}

if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', listDevices);
}

el.micDevice.addEventListener('change', async () => {
  setPref(MIC_KEY, el.micDevice.value);
  if (S.micTesting) {
    stopCapture();
    await testMic(true);
  }
});

// The microphone test: open the microphone and show its level, before going live.
async function testMic(on) {
  el.setupError.hidden = true;
  if (!on) {
    S.micTesting = false;
    stopCapture();
    renderMicTest();
    return;
  }
  try {
    await startCapture();
    S.micTesting = true;
  } catch (e) {
    S.micTesting = false;
    showSetup(e.message);
  }
  renderMicTest();
}

el.micTest.addEventListener('click', () => testMic(!S.micTesting));

function renderMicTest() {
  el.micTest.setAttribute('aria-pressed', S.micTesting ? 'true' : 'false');
  el.micTest.textContent = S.micTesting ? i18n.t('micTestStop') : i18n.t('micTest');
}

function setLevel(rms) {
  const v = levelOf(rms);
  S.level = Math.round(v * 100);
  for (const [meter, bar] of [[el.level, el.levelBar], [el.testLevel, el.testLevelBar]]) {
    bar.style.transform = `scaleX(${v})`;
    meter.dataset.hot = v > 0.92 ? 'true' : 'false';
  }
  const now = performance.now();
  if (now - lastLevelAria > 500) {
    lastLevelAria = now;
    el.level.setAttribute('aria-valuenow', String(S.level));
    el.testLevel.setAttribute('aria-valuenow', String(S.level));
  }
}

function onChunk(m) {
  if (m.type !== 'chunk') return;
  S.chunksCaptured++;
  setLevel(broadcast.isMuted && wanted ? 0 : m.rms);
  if (TAPS && m.tap >= 0 && cap) {
    // When the onset was at the microphone: its audio-clock time, less the
    // output latency that contextToWall adds (it maps to when a time is heard).
    const c = cap.ctx;
    const t = m.end - (m.len - m.tap) / 16000;
    window.pentecostTaps.mouth.push(contextToWall(c, t) - ((c.baseLatency || 0) + (c.outputLatency || 0)) * 1000);
  }
  if (!active || !active.joined || broadcast.isPaused || broadcast.isMuted || replaced) return;
  if (S.codec === 'opus') {
    if (enc) enc.encode(m.pcm);
    else S.chunksDropped++;
    return;
  }
  sendAudio(m.pcm);
}

// sendAudio sends one chunk (PCM16) or packet (Opus) on the current
// connection.
function sendAudio(b) {
  if (!active || !active.joined || replaced) return;
  const ws = active.ws;
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED) {
    S.chunksDropped++; // the network is stalled: live audio, drop it
    return;
  }
  ws.send(b);
  S.chunksSent++;
  S.bytesSent += b.byteLength;
}

// setupEncoder makes the Opus encoder an Opus session needs, for its packet
// duration, once per session.
async function setupEncoder(sessionId, packetMs) {
  const key = `${sessionId}/${packetMs}`;
  if (enc && encFor === key) return;
  if (enc) enc.close();
  enc = null;
  encFor = key;
  const cfg = await opusConfig(packetMs);
  if (encFor !== key) return; // another session meanwhile
  if (!cfg) {
    // An Opus session (made elsewhere) that this browser cannot feed.
    S.encoderError = 'this browser cannot encode Opus';
    wanted = false;
    stopTimers();
    if (active) active.ws.close(1000);
    showSetup(i18n.t('errOpus'));
    return;
  }
  enc = new OpusEncoderStage(cfg, sendAudio, (e) => {
    // The encoder broke (a browser's codec can): a new one a second later,
    // a few times; the listeners hear a gap.
    S.encoderError = String(e && e.message ? e.message : e);
    S.encoder = '';
    if (encFor !== key) return;
    enc.close();
    enc = null;
    encFor = '';
    if (++S.encoderRestarts > MAX_ENCODER_RESTARTS) return;
    setTimeout(() => {
      if (S.codec === 'opus' && S.sessionId === sessionId && !encFor) setupEncoder(sessionId, packetMs);
    }, 1000);
  });
  S.encoder = 'webcodecs';
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
  S.micTesting = false;
  renderMicTest();
  // A new session carries Opus when this browser can encode it (the
  // server's default packet duration, 40 ms unless the operator chose
  // another); the server encodes PCM16 for Opus listeners otherwise.
  if (q.action === 'createSession' && (await opusConfig(40))) q = { ...q, audioFormat: 'opus' };
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
  wake.set(true);
  render();
}

// connectWS opens a WebSocket whose token goes in the first message
// ({"action":"authenticate"}, docs/protocol.md), never in the URL, which
// proxies log and browsers print in the console.
function connectWS(q) {
  const ws = new WebSocket(wsURL({ ...q, auth: 'message' }));
  ws.addEventListener('open', () => sendJSON(ws, { action: 'authenticate', token }));
  return ws;
}

function open(q) {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  const ws = connectWS(q);
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
  S.codec = m.codec || m.audioFormat || 'pcm16';
  S.packetMs = m.packetMs || 40;
  if (S.codec === 'opus') setupEncoder(m.sessionId, S.packetMs);
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
      S.countStale = false;
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
  const ws = connectWS({ action: 'refreshConnection', sessionId: S.sessionId, role: 'speaker' });
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
  wake.set(false);
  for (const c of [active, pending]) if (c) c.ws.close(1000);
  active = null;
  pending = null;
}

function finish() {
  ended = true;
  wanted = false;
  stopTimers();
  stopCapture();
  wake.set(false);
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

window.addEventListener('online', () => {
  if (wanted && !active && reconnectTimer) open(intent);
});

// ---- Rendering ----

// isLoopback: a host only this computer can reach.
function isLoopback(host) {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\./.test(h) || h === '::1';
}

const trimSlash = (u) => String(u).replace(/\/+$/, '');

// loadLinks asks the server where phones can reach it (GET /links):
// its public URL, or its LAN addresses when this page is on loopback.
async function loadLinks() {
  try {
    const r = await fetch('/links', { headers: { Accept: 'application/json' } });
    links = r.ok ? await r.json() : null;
  } catch {
    links = null;
  }
  if (S.sessionId) renderShare();
}

// shareBases picks the addresses the listener link can start with: the
// public URL; else, on a loopback page, the LAN addresses (the first is
// chosen, the others a click away), with a warning when there are none;
// else this page's own origin.
function shareBases() {
  const pub = links && typeof links.publicUrl === 'string' ? trimSlash(links.publicUrl) : '';
  if (pub) return { source: 'public', bases: [pub] };
  if (isLoopback(location.hostname)) {
    const lan = ((links && Array.isArray(links.lanUrls)) ? links.lanUrls : []).map(trimSlash).filter(Boolean);
    if (lan.length) return { source: 'lan', bases: lan };
    return { source: 'loopback', bases: [location.origin] };
  }
  return { source: 'origin', bases: [location.origin] };
}

function renderShare() {
  const id = S.sessionId;
  el.sessionId.textContent = id;
  el.sessionId.style.setProperty('--len', String(Math.max(8, id.length)));
  const { source, bases } = shareBases();
  S.linkSource = source;
  S.linkBases = bases;
  const chosen = bases.includes(el.linkAddress.value) ? el.linkAddress.value : bases[0];
  el.linkChoice.hidden = bases.length < 2;
  if (bases.length > 1) {
    el.linkAddress.replaceChildren(...bases.map((b) => new Option(b.replace(/^https?:\/\//, ''), b)));
    el.linkAddress.value = chosen;
  }
  el.linkWarning.hidden = source !== 'loopback';
  el.linkWarning.textContent = source === 'loopback' ? i18n.t('linkLoopback', { origin: location.origin }) : '';
  const url = `${chosen}/listen/${id}`;
  el.link.value = url;
  let svg;
  try {
    svg = qrSVG(encodeQR(url, 'M'), { label: i18n.t('qrLabel', { url }) });
  } catch {
    svg = null; // an origin too long for version 10: the link still works
  }
  el.qr.replaceChildren(...(svg ? [svg] : []));
}

el.linkAddress.addEventListener('change', renderShare);

function renderListeners() {
  el.listeners.dataset.stale = S.countStale ? 'true' : 'false';
  el.countStale.hidden = !S.countStale;
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
  // While disconnected the figures are the last known: grey them out.
  const stale = !controls && st !== 'connecting';
  if (stale !== S.countStale) {
    S.countStale = stale;
    renderListeners();
  }
  el.pause.disabled = !controls;
  el.mute.disabled = !controls;
  el.replaced.hidden = st !== 'replaced';
  document.title = S.sessionId ? `${text} · ${S.sessionId}` : i18n.t('speakTitle');
}

// renderInsecure explains, on a page that is not a secure context, the two
// ways to a microphone: this computer's localhost, or HTTPS.
function renderInsecure() {
  const insecure = !window.isSecureContext;
  el.insecure.hidden = !insecure;
  el.start.disabled = insecure;
  el.micTest.disabled = insecure;
  el.resumeLast.disabled = insecure;
  $('resume').disabled = insecure;
  if (!insecure) return;
  const port = location.port ? `:${location.port}` : '';
  el.insecureWhy.textContent = i18n.t('secureWhy', { origin: location.origin });
  el.insecureLocal.textContent = i18n.t('secureLocal', { url: `http://localhost${port}/speak` });
}

// ---- Start-up ----

async function init() {
  renderInsecure();
  renderMicTest();
  listDevices();
  loadLinks();
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
