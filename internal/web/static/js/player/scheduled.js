// The playback path for pages that are not a secure context (a phone at
// http://192.168.1.20:8080, where AudioWorklet does not exist): the main
// thread pulls blocks from the same jitter buffer and schedules each as an
// AudioBufferSourceNode, back to back on the audio clock, a little ahead of
// what is being heard. Nothing here needs a secure context.
//
// The lead (how far ahead blocks are scheduled) covers the main thread's
// timer jitter: when a tick comes so late that the next block's time has
// passed, the block goes out at once (a short gap, counted as `late`) and
// the lead grows by 20 ms (up to 200 ms); it shrinks back over seconds.

export const BLOCK_MS = 20;
const TICK_MS = 10;
const LEAD = { normal: { min: 50, max: 200 }, lowDelay: { min: 30, max: 200 } };

export class ScheduledOutput {
  /**
   * @param {AudioContext} ctx
   * @param {AudioNode} dest where the blocks go
   * @param {import('./jitter.js').JitterBuffer} jb
   * @param {{lowDelay?: boolean, onTap?: (contextTime: number) => void}} o
   */
  constructor(ctx, dest, jb, o = {}) {
    this.ctx = ctx;
    this.dest = dest;
    this.jb = jb;
    this.blockLen = Math.round((ctx.sampleRate * BLOCK_MS) / 1000);
    this.setLowDelay(!!o.lowDelay);
    this.leadMs = this.lead.min;
    this.nextFrame = -1; // audio-clock frame of the next block
    this.late = 0;
    this.onTap = o.onTap || null;
    this.lastTick = 0;
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  setLowDelay(on) {
    this.lead = on ? LEAD.lowDelay : LEAD.normal;
    if (this.leadMs < this.lead.min) this.leadMs = this.lead.min;
  }

  /** tick schedules blocks until the lead is covered. Cheap to call often. */
  tick() {
    const ctx = this.ctx;
    if (ctx.state !== 'running') return;
    const sr = ctx.sampleRate;
    const now = ctx.currentTime;
    const wall = performance.now();
    if (this.lastTick) {
      // The lead comes back down with a half-life of 4 s.
      const dt = (wall - this.lastTick) / 1000;
      this.leadMs = Math.max(this.lead.min, this.lead.min + (this.leadMs - this.lead.min) * 2 ** (-dt / 4));
    }
    this.lastTick = wall;
    const nowFrame = Math.ceil(now * sr);
    if (this.nextFrame < nowFrame + Math.round(sr * 0.002)) {
      if (this.nextFrame >= 0) {
        this.late++;
        this.leadMs = Math.min(this.lead.max, this.leadMs + 20);
      }
      this.nextFrame = nowFrame + Math.round(sr * 0.005);
    }
    const until = now + this.leadMs / 1000;
    while (this.nextFrame / sr < until) {
      const buf = ctx.createBuffer(1, this.blockLen, sr);
      const data = buf.getChannelData(0);
      const at = this.nextFrame / sr;
      this.jb.onTap = this.onTap ? (j) => this.onTap(at + j / sr) : null;
      this.jb.pull(data);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(this.dest);
      src.start(at);
      this.nextFrame += this.blockLen;
    }
  }

  close() {
    clearInterval(this.timer);
    this.timer = 0;
  }
}
