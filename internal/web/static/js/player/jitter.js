// The listener's jitter buffer: the one piece of playback logic shared by
// both audio paths (the AudioWorklet in a secure context, scheduled
// AudioBufferSourceNodes elsewhere; see player.js). It knows nothing of Web
// Audio, sockets or clocks: decoded samples go in with push(), the output
// path pulls blocks at the output rate with pull(), and time is counted in
// the samples pulled. That keeps it testable by simulation (the browser
// tests run it with made-up arrival times) and importable from a worklet.
//
// Delay control. The buffer aims to hold, just before each chunk arrives,
// a "floor" of audio: the arrival jitter of the last hundred chunks (how
// much later than the earliest they came, relative to the media time they
// carry: its 90th percentile, as WebRTC's NetEq plans for a quantile rather
// than the worst case), a safety margin and the output path's pull
// granularity. Rarer stalls are the underrun bump's business. Playback starts
// once floor + one chunk is queued. Then:
// - an underrun (nothing to play) fades out, counts, adds a "bump" to the
//   floor (40 ms, 20 ms in low-delay mode) and waits for the target again;
//   the bump halves every 2 s, so the delay comes back down within seconds;
// - when the buffer's minimum over a second sits above the floor (a burst
//   after a stall, a target that came down), the excess is drained: twice
//   as fast through quiet passages (inaudible), and if none comes within
//   two seconds, skipped with a short fade;
// - a sequence gap ({gap:true}) fades the queued tail out and the new audio
//   in, instead of a click; flush() fades out and empties.

const RING = 1 << 18; // samples: 16 s at 16 kHz
const FADE_MS = 6;
const HALF_LIFE_S = 2; // of the underrun bump
const WINDOW = 100; // arrivals kept for the jitter estimate: four seconds of 40 ms chunks
const QUANTILE = 0.9;
const IDLE_MS = 1500; // a pause in arrivals this long starts the statistics over
const QUIET = 0.02; // below this envelope (about -34 dBFS) a passage is quiet

export const MODES = {
  normal: { marginMs: 30, bumpMs: 40, maxMs: 300, slackMs: 15 },
  lowDelay: { marginMs: 12, bumpMs: 20, maxMs: 200, slackMs: 8 },
};

export class JitterBuffer {
  /**
   * @param {number} outRate the output sample rate
   * @param {{lowDelay?: boolean, quantumMs?: number, taps?: boolean}} o
   *   quantumMs: how much the output path pulls at a time (it must be
   *   covered by the floor); taps: report loud onsets (latency measurement).
   */
  constructor(outRate, o = {}) {
    this.outRate = outRate;
    this.rate = 16000; // input rate, taken from each chunk
    this.ring = new Float32Array(RING);
    this.mask = RING - 1;
    this.write = 0; // absolute index of the next sample to write
    this.read = 0; // absolute, fractional read position
    this.playing = false;
    this.started = false; // playback has started since the last flush
    this.env = 0; // output gain, for fades
    this.envGoal = 1;
    this.pendingFlush = false;
    this.pendingSkip = 0;
    this.chunkEnds = [];
    this.quantumMs = o.quantumMs || (128 * 1000) / outRate;
    this.setLowDelay(!!o.lowDelay);
    this.chunkMs = 40;
    this.bump = 0; // ms
    this.jitterMs = 0;
    this.resetArrivals();
    this.drain = 0; // input samples still to drain
    this.drainAge = 0; // output samples spent draining
    this.windowMin = Infinity;
    this.windowLen = 0;
    this.inEnv = 0; // envelope of the signal being read, for "quiet"
    this.last = 0;
    // Counters.
    this.samplesPlayed = 0;
    this.chunksPlayed = 0;
    this.underruns = 0;
    this.skips = 0;
    this.drained = 0; // input samples drained through quiet passages
    this.peak = 0; // since takeStats()
    this.sumSq = 0;
    this.sumN = 0;
    this.levelSum = 0; // buffered samples, summed per pull, for the mean delay
    this.levelN = 0;
    // Taps: onsets of loud sound after quiet (the latency test's clicks).
    this.taps = !!o.taps;
    this.tapQuiet = 0; // output samples since the signal was last loud (> 0.3)
    this.onTap = null; // (index in the pulled block) => void
  }

  setLowDelay(on) {
    this.lowDelay = on;
    this.mode = on ? MODES.lowDelay : MODES.normal;
  }

  resetArrivals() {
    this.mediaMs = 0; // media time pushed since the statistics started
    this.lastArrival = null;
    this.delays = new Float64Array(WINDOW); // arrival - media end, a ring
    this.nDelays = 0;
    this.sorted = new Float64Array(WINDOW);
  }

  fadeLen() { return Math.max(1, Math.round((this.rate * FADE_MS) / 1000)); }

  available() { return this.write - this.read; }

  /** floorMs is the audio the buffer aims to hold just before a chunk arrives. */
  floorMs() {
    return Math.min(this.mode.maxMs - this.chunkMs, this.jitterMs + this.mode.marginMs + this.quantumMs + this.bump);
  }

  /** targetMs is what playback (re)starts at: the floor plus one chunk. */
  targetMs() { return Math.min(this.mode.maxMs, this.floorMs() + this.chunkMs); }

  /**
   * push queues decoded samples.
   * @param {Float32Array} samples (modified in place by fades)
   * @param {number} rate their sample rate
   * @param {{gap?: boolean, arrival?: number}} o gap: samples were lost
   *   before these; arrival: when the chunk arrived (ms, any monotonic clock)
   */
  push(samples, rate, o = {}) {
    const n = samples.length;
    if (n === 0) return;
    if (rate !== this.rate) {
      // A new stream rate: start over rather than mix rates.
      this.write = 0; this.read = 0; this.chunkEnds = []; this.playing = false;
      this.rate = rate;
      this.resetArrivals();
    }
    this.chunkMs = (n * 1000) / rate;
    if (this.available() + n > RING - 1) {
      // Far behind (the output was suspended): drop what is queued.
      this.read = this.write;
      this.chunkEnds = [];
      this.playing = false;
      this.drain = 0;
    }
    if (o.gap) this.resetArrivals();
    this.arrived(o.arrival, this.chunkMs);
    const f = this.fadeLen();
    if (o.gap) {
      const unread = Math.floor(this.available());
      const k = Math.min(f, unread);
      for (let i = 0; i < k; i++) {
        const idx = (this.write - k + i) & this.mask;
        this.ring[idx] *= (k - i - 1) / k;
      }
      for (let i = 0; i < Math.min(f, n); i++) samples[i] *= i / f;
    }
    for (let i = 0; i < n; i++) this.ring[(this.write + i) & this.mask] = samples[i];
    this.write += n;
    this.chunkEnds.push(this.write);
  }

  // arrived updates the jitter estimate: how much later than the earliest
  // the chunks arrive, relative to the media time they carry.
  arrived(t, ms) {
    if (typeof t !== 'number') return;
    if (this.lastArrival !== null && t - this.lastArrival > IDLE_MS) this.resetArrivals();
    this.lastArrival = t;
    this.mediaMs += ms;
    this.delays[this.nDelays % WINDOW] = t - this.mediaMs;
    this.nDelays++;
    const n = Math.min(this.nDelays, WINDOW);
    const s = this.sorted.subarray(0, n);
    s.set(this.delays.subarray(0, n));
    s.sort();
    // The earliest arrival is the baseline: no chunk comes before its time.
    const q = s[Math.min(n - 1, Math.floor(QUANTILE * n))];
    this.jitterMs = Math.max(0, Math.min(this.mode.maxMs, q - s[0]));
  }

  flush() {
    this.drain = 0;
    this.started = false;
    this.resetArrivals();
    if (this.playing && this.available() > 0) {
      this.pendingFlush = true;
      this.envGoal = 0;
    } else {
      this.read = this.write;
      this.chunkEnds = [];
      this.playing = false;
    }
  }

  sample(pos) {
    const i = Math.floor(pos);
    const frac = pos - i;
    const a = this.ring[i & this.mask];
    if (frac === 0) return a;
    const b = this.ring[(i + 1) & this.mask];
    return a + (b - a) * frac;
  }

  /** pull fills out (at the output rate) with what is to be heard next. */
  pull(out) {
    const step = this.rate / this.outRate;
    const targetSamples = (this.targetMs() * this.rate) / 1000;
    const envStep = 1 / Math.max(1, (this.outRate * FADE_MS) / 1000);
    const envDecay = Math.exp(-1 / (this.outRate * 0.01)); // 10 ms
    if (!this.playing && this.available() >= targetSamples && !this.pendingFlush) {
      this.playing = true;
      this.env = 0;
      this.envGoal = 1;
      // The first chunks of a stream come in a burst (the page was busy
      // starting up, or the stream was flushed): not jitter to plan for.
      if (!this.started) this.resetArrivals();
      this.started = true;
    }
    let played = 0;
    for (let j = 0; j < out.length; j++) {
      if (!this.playing) {
        // Silence, decaying from the last sample so that stopping never clicks.
        this.last *= 0.9;
        out[j] = this.last;
        this.tap(0, j);
        continue;
      }
      let adv = step;
      if (this.drain > 0 && this.inEnv < QUIET && this.envGoal === 1) {
        adv = 2 * step; // quiet: play it at double speed
        this.drain -= step;
        this.drained += step;
      }
      if (this.available() < adv + 1) {
        // Underrun: fade out what was playing and wait for the target again.
        this.playing = false;
        this.underruns++;
        this.bump = Math.min(this.mode.maxMs, this.bump + this.mode.bumpMs);
        this.drain = 0;
        this.last *= 0.9;
        out[j] = this.last;
        this.tap(0, j);
        continue;
      }
      if (this.env < this.envGoal) this.env = Math.min(this.envGoal, this.env + envStep);
      else if (this.env > this.envGoal) this.env = Math.max(this.envGoal, this.env - envStep);
      if (this.env === 0 && this.envGoal === 0) {
        if (this.pendingFlush) {
          this.pendingFlush = false;
          this.pendingSkip = 0;
          this.read = this.write;
          this.playing = false;
          this.chunkEnds = [];
          out[j] = 0;
          this.last = 0;
          this.tap(0, j);
          continue;
        }
        if (this.pendingSkip > 0) {
          this.read += Math.min(this.pendingSkip, Math.max(0, this.available() - adv - 1));
          this.pendingSkip = 0;
          this.skips++;
        }
        this.envGoal = 1;
      }
      const x = this.sample(this.read);
      const ax = x < 0 ? -x : x;
      this.inEnv = ax > this.inEnv ? ax : this.inEnv * envDecay;
      const v = x * this.env;
      const av = v < 0 ? -v : v;
      if (av > this.peak) this.peak = av;
      this.sumSq += v * v;
      out[j] = v;
      this.last = v;
      this.read += adv;
      played += step;
      this.tap(av, j);
    }
    this.sumN += out.length;
    while (this.chunkEnds.length && this.chunkEnds[0] <= this.read) {
      this.chunkEnds.shift();
      this.chunksPlayed++;
    }
    this.samplesPlayed += Math.floor(played);
    this.adapt(out.length);
  }

  tap(av, j) {
    if (!this.taps) return;
    if (av > 0.3) {
      if (this.tapQuiet > this.outRate * 0.2 && this.onTap) this.onTap(j);
      this.tapQuiet = 0;
    } else {
      this.tapQuiet++;
    }
  }

  // adapt runs once per pulled block: the bump decays, and the buffer's
  // minimum over each second decides whether to drain an excess.
  adapt(n) {
    const dt = n / this.outRate;
    if (this.bump > 0) {
      this.bump *= 2 ** (-dt / HALF_LIFE_S);
      if (this.bump < 0.5) this.bump = 0;
    }
    if (!this.playing) {
      this.windowMin = Infinity;
      this.windowLen = 0;
      return;
    }
    const avail = this.available();
    this.levelSum += avail;
    this.levelN++;
    if (avail < this.windowMin) this.windowMin = avail;
    this.windowLen += n;
    if (this.drain > 0) {
      this.drainAge += n;
      if (this.drainAge > this.outRate * 2 && this.envGoal === 1 && !this.pendingFlush) {
        // No quiet passage came: skip the rest with a fade.
        if ((this.drain * 1000) / this.rate > 20) {
          this.pendingSkip = Math.floor(this.drain);
          this.envGoal = 0;
        }
        this.drain = 0;
      }
    }
    if (this.windowLen >= this.outRate) {
      const floor = (this.floorMs() * this.rate) / 1000;
      const slack = (this.mode.slackMs * this.rate) / 1000;
      if (this.drain <= 0 && this.windowMin > floor + slack) {
        this.drain = this.windowMin - floor;
        this.drainAge = 0;
      }
      this.windowMin = Infinity;
      this.windowLen = 0;
    }
  }

  /** takeStats returns the counters and resets the per-period figures. */
  takeStats() {
    const s = {
      samplesPlayed: this.samplesPlayed,
      chunksPlayed: this.chunksPlayed,
      underruns: this.underruns,
      skips: this.skips,
      drainedMs: Math.round((this.drained * 1000) / this.rate),
      bufferedMs: Math.round((this.available() * 1000) / this.rate),
      meanBufferedMs: this.levelN ? Math.round((this.levelSum / this.levelN) * 1000 / this.rate) : 0,
      targetMs: Math.round(this.targetMs()),
      jitterMs: Math.round(this.jitterMs),
      playing: this.playing,
      peak: this.peak,
      rms: this.sumN ? Math.sqrt(this.sumSq / this.sumN) : 0,
      lowDelay: this.lowDelay,
    };
    this.peak = 0;
    this.sumSq = 0;
    this.sumN = 0;
    this.levelSum = 0;
    this.levelN = 0;
    return s;
  }
}
