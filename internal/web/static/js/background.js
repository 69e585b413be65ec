// Playing on with the screen off: the Media Session (what a phone's lock
// screen and notification show, and their play/pause buttons) and the
// Screen Wake Lock (keep the screen on). Both are optional: every call is a
// no-op where the browser lacks the API. The Screen Wake Lock exists only
// in secure contexts (https, localhost); the Media Session everywhere.
// docs/webapps.md, "Background and lock screen", says what each platform does.

/**
 * mediaSession describes what plays and wires the play/pause buttons.
 * @param {{title: string, artist: string, album?: string}} meta
 * @param {{play: () => void, pause: () => void}} handlers
 */
export function mediaSession(meta, handlers) {
  const ms = navigator.mediaSession;
  if (!ms || typeof window.MediaMetadata !== 'function') return;
  try {
    ms.metadata = new MediaMetadata({
      title: meta.title, artist: meta.artist, album: meta.album || 'Pentecost',
      artwork: [{ src: '/static/icon.svg', sizes: 'any', type: 'image/svg+xml' }],
    });
  } catch { /* an old MediaMetadata */ }
  for (const [action, f] of [['play', handlers.play], ['pause', handlers.pause], ['stop', handlers.pause]]) {
    try { ms.setActionHandler(action, f); } catch { /* not supported here */ }
  }
}

/** playbackState tells the lock screen whether the sound plays. */
export function playbackState(state) {
  const ms = navigator.mediaSession;
  if (ms) {
    try { ms.playbackState = state; } catch { /* older browser */ }
  }
}

/** clearMediaSession forgets the metadata and handlers (the listener left). */
export function clearMediaSession() {
  const ms = navigator.mediaSession;
  if (!ms) return;
  try { ms.metadata = null; } catch { /* ignore */ }
  for (const a of ['play', 'pause', 'stop']) {
    try { ms.setActionHandler(a, null); } catch { /* ignore */ }
  }
  playbackState('none');
}

/** wakeLockSupported: the Screen Wake Lock API is here (secure contexts only). */
export function wakeLockSupported() {
  return !!(navigator.wakeLock && typeof navigator.wakeLock.request === 'function');
}

/**
 * screenWake keeps the screen on while wanted: the browser releases the lock
 * whenever the page is hidden, so it is taken again when the page shows.
 * onChange(active) reports the lock's state.
 */
export function screenWake(onChange = () => {}) {
  let wanted = false;
  let sentinel = null;
  const take = async () => {
    if (!wanted || sentinel || !wakeLockSupported() || document.visibilityState !== 'visible') return;
    try {
      sentinel = await navigator.wakeLock.request('screen');
      sentinel.addEventListener('release', () => {
        sentinel = null;
        onChange(false);
      });
      if (!wanted) {
        sentinel.release().catch(() => {});
        return;
      }
      onChange(true);
    } catch {
      sentinel = null;
      onChange(false);
    }
  };
  document.addEventListener('visibilitychange', take);
  return {
    set(on) {
      wanted = !!on;
      if (wanted) take();
      else if (sentinel) sentinel.release().catch(() => {});
    },
  };
}
