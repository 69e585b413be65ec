// The listener's player: an AudioContext, one output path fed by the shared
// jitter buffer, a volume gain, and an <audio> element that carries the
// sound to the speakers (so it keeps playing in the background and, where
// the platform allows, with the screen locked; docs/webapps.md).
//
//   decoded samples ─▶ output path ─▶ GainNode ─▶ MediaStreamAudioDestinationNode ─▶ <audio>
//
// Output paths (both run JitterBuffer from jitter.js):
// - 'worklet': an AudioWorkletNode (secure contexts only: https, localhost);
// - 'scheduled': AudioBufferSourceNodes scheduled from the main thread
//   (scheduled.js), for plain-HTTP pages where AudioWorklet is undefined.

import { JitterBuffer } from './jitter.js';
import { ScheduledOutput, BLOCK_MS } from './scheduled.js';
import { contextToWall } from '../common.js';

const MAX_EARLY = 50; // chunks kept while the worklet module loads

// Gecko answers AudioContext.outputLatency with a synchronous call to its
// audio process (cubeb_stream_get_latency over AudioIPC) until it has a
// figure, and that call can deadlock the tab as playback starts: Firefox ESR
// 153 on Linux with PulseAudio froze in the first read in 5 of 16 loaded
// runs of TestBrowserFirefox, never with the read left out. There the delay
// shown leaves the output's own latency (tens of ms) out.
const ASK_OUTPUT_LATENCY = !/ Gecko\/\d/.test(navigator.userAgent);

/** audioSupported reports whether this browser can play at all. */
export function audioSupported() {
  return typeof window.AudioContext === 'function' || typeof window.webkitAudioContext === 'function';
}

export class Player {
  /**
   * Make it in a click handler: browsers let audio start only after a
   * gesture, and the <audio> element's play() must come from one too.
   * @param {{rate: number, lowDelay?: boolean, taps?: boolean, audio?: HTMLAudioElement,
   *          onStats?: (s: object) => void, onTap?: (wallMs: number) => void}} o
   */
  constructor(o) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) throw new Error('no AudioContext');
    this.o = o;
    let ctx;
    try {
      // The stream's own rate: the browser resamples (well) on the way out.
      ctx = new AC({ sampleRate: o.rate, latencyHint: 'interactive' });
    } catch {
      ctx = new AC({ latencyHint: 'interactive' });
    }
    this.ctx = ctx;
    this.kind = ctx.audioWorklet ? 'worklet' : 'scheduled';
    this.gain = ctx.createGain();
    this.audio = o.audio || null;
    this.viaElement = false;
    if (this.audio && typeof ctx.createMediaStreamDestination === 'function') {
      const dest = ctx.createMediaStreamDestination();
      this.gain.connect(dest);
      this.audio.srcObject = dest.stream;
      this.viaElement = true;
    } else {
      this.gain.connect(ctx.destination);
    }
    this.early = [];
    this.node = null;
    this.sched = null;
    this.lowDelay = !!o.lowDelay;
    const onTap = o.taps && o.onTap ? (t) => o.onTap(this.contextToWall(t)) : null;
    if (this.kind === 'worklet') {
      ctx.audioWorklet.addModule('/static/worklets/playback.js').then(() => {
        const node = new AudioWorkletNode(ctx, 'pentecost-playback', {
          numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
          processorOptions: { lowDelay: this.lowDelay, taps: !!o.taps },
        });
        node.port.onmessage = (e) => {
          const m = e.data;
          if (m.type === 'stats') this.report(m);
          else if (m.type === 'tap' && onTap) onTap(m.time);
        };
        node.connect(this.gain);
        this.node = node;
        for (const [m, tr] of this.early) node.port.postMessage(m, tr);
        this.early = [];
      });
    } else {
      this.jb = new JitterBuffer(ctx.sampleRate, { lowDelay: this.lowDelay, quantumMs: BLOCK_MS + 10, taps: !!o.taps });
      this.sched = new ScheduledOutput(ctx, this.gain, this.jb, { lowDelay: this.lowDelay, onTap });
      this.statsTimer = setInterval(() => this.report(this.jb.takeStats()), 100);
    }
    this.resume();
  }

  report(s) {
    s.path = this.kind;
    s.late = this.sched ? this.sched.late : 0;
    s.outputMs = this.outputLatencyMs();
    // What this device adds: the buffer (its mean over the last period), the
    // scheduling lead, and the audio output's own latency.
    s.delayMs = Math.round((s.meanBufferedMs || s.bufferedMs) + s.outputMs);
    if (this.o.onStats) this.o.onStats(s);
  }

  /** outputLatencyMs: the scheduling lead plus what the audio output reports. */
  outputLatencyMs() {
    const c = this.ctx;
    const out = ((c.baseLatency || 0) + (ASK_OUTPUT_LATENCY ? c.outputLatency || 0 : 0)) * 1000;
    return Math.round(out + (this.sched ? this.sched.leadMs : 0));
  }

  /** contextToWall turns an audio-clock time into Unix milliseconds, when it is heard. */
  contextToWall(t) { return contextToWall(this.ctx, t); }

  post(m, transfer = []) {
    if (this.node) this.node.port.postMessage(m, transfer);
    else if (this.kind === 'worklet' && this.early.length < MAX_EARLY) this.early.push([m, transfer]);
  }

  /** push queues decoded samples: meta {gap, arrival}. */
  push(samples, rate, meta = {}) {
    if (this.jb) {
      this.jb.push(samples, rate, meta);
      this.sched.tick();
      return;
    }
    this.post({ type: 'chunk', samples, rate, gap: !!meta.gap, arrival: meta.arrival }, [samples.buffer]);
  }

  /** flush fades out and forgets what is queued. */
  flush() {
    if (this.jb) this.jb.flush();
    else this.post({ type: 'flush' });
  }

  setLowDelay(on) {
    this.lowDelay = !!on;
    if (this.jb) {
      this.jb.setLowDelay(this.lowDelay);
      this.sched.setLowDelay(this.lowDelay);
    } else {
      this.post({ type: 'lowDelay', on: this.lowDelay });
    }
  }

  setVolume(v) { this.gain.gain.setTargetAtTime(v, this.ctx.currentTime, 0.02); }

  /**
   * resume (re)starts the sound: the context (iOS leaves it "interrupted"
   * after a lock or a call) and the <audio> element. Call it from gestures
   * and when the page becomes visible again.
   */
  resume() {
    if (this.ctx.state !== 'running' && this.ctx.state !== 'closed') this.ctx.resume().catch(() => {});
    if (this.viaElement && this.audio.paused) {
      const p = this.audio.play();
      if (p && p.catch) p.catch(() => {});
    }
  }

  /**
   * pause stops the sound (the listener pressed Stop, or left): the <audio>
   * element, and the audio context, so that neither the worklet nor the
   * scheduled path keeps working on a phone that plays nothing.
   */
  pause() {
    if (this.viaElement) this.audio.pause();
    if (this.ctx.state === 'running') this.ctx.suspend().catch(() => {});
  }

  close() {
    if (this.sched) this.sched.close();
    clearInterval(this.statsTimer);
    if (this.viaElement) {
      this.audio.pause();
      this.audio.srcObject = null;
    }
    this.ctx.close().catch(() => {});
  }
}
