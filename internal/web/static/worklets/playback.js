// AudioWorklet processor of the listener app: plays PCM chunks from a jitter
// buffer.
//
// The main thread posts {type:'chunk', samples: Float32Array, rate, gap}.
// Samples go into a ring buffer at their own rate and are read out at the
// context's rate with linear interpolation. Playback starts once the buffer
// holds the target latency; an underrun fades out, counts, raises the target
// by 40 ms (at most 280 ms, under 300) and waits to refill; 20 s without an
// underrun lowers the target by 20 ms (down to 60 ms). When the buffer stays
// above the target for a second (the network delivered a burst), the excess
// is skipped with a short fade out and in, so latency does not creep up.
// A sequence gap ({gap:true}) fades the audio before it out and the new
// audio in, instead of a click. {type:'flush'} fades out and empties.
//
// Every 200 ms it posts {type:'stats', samplesPlayed, chunksPlayed,
// underruns, skips, bufferedMs, targetMs, playing, peak} (peak: the loudest
// sample played since the previous message).

const MIN_MS = 60;
const MAX_MS = 280;
const START_MS = 100;
const FADE_MS = 6;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.rate = o.rate || 16000; // input rate, updated per chunk
    this.ring = new Float32Array(1 << 18); // 262144 samples: 16 s at 16 kHz
    this.mask = this.ring.length - 1;
    this.write = 0; // absolute index of the next sample to write
    this.read = 0; // absolute (fractional) read position
    this.playing = false;
    this.targetMs = o.targetMs || START_MS;
    this.env = 0; // output gain envelope, for fades
    this.envGoal = 1;
    this.pendingSkip = 0; // samples to skip once faded out
    this.pendingFlush = false;
    this.chunkEnds = []; // absolute end index of each queued chunk
    this.samplesPlayed = 0;
    this.chunksPlayed = 0;
    this.underruns = 0;
    this.skips = 0;
    this.sinceUnderrun = 0; // output samples since the last underrun
    this.windowMin = Infinity;
    this.windowLen = 0;
    this.statsLen = 0;
    this.last = 0;
    this.peak = 0; // loudest sample played since the last stats message
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'chunk') this.push(m.samples, m.rate || this.rate, m.gap);
    else if (m.type === 'flush') this.flush();
    else if (m.type === 'reset') {
      this.flush();
      this.targetMs = START_MS;
    }
  }

  fadeLen() { return Math.max(1, Math.round((this.rate * FADE_MS) / 1000)); }

  available() { return this.write - this.read; }

  push(samples, rate, gap) {
    if (rate !== this.rate) {
      // A new stream rate: start over rather than mix rates.
      this.write = 0; this.read = 0; this.chunkEnds = []; this.playing = false;
      this.rate = rate;
    }
    const n = samples.length;
    if (n === 0) return;
    if (this.available() + n > this.ring.length - 1) {
      // Far behind (the context was suspended): drop what is queued.
      this.read = this.write;
      this.chunkEnds = [];
      this.playing = false;
    }
    const f = this.fadeLen();
    if (gap) {
      // Fade out the queued tail and fade the new audio in.
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

  flush() {
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

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const step = this.rate / sampleRate;
    const targetSamples = (this.targetMs * this.rate) / 1000;
    const envStep = 1 / Math.max(1, (sampleRate * FADE_MS) / 1000);
    if (!this.playing && this.available() >= targetSamples) {
      this.playing = true;
      this.env = 0;
      this.envGoal = 1;
    }
    let played = 0;
    for (let j = 0; j < out.length; j++) {
      if (!this.playing) {
        // Silence, decaying from the last sample so that stopping never clicks.
        this.last *= 0.9;
        out[j] = this.last;
        continue;
      }
      if (this.available() < step + 1) {
        // Underrun: fade out what was playing and wait for the target again.
        this.playing = false;
        this.underruns++;
        this.sinceUnderrun = 0;
        this.targetMs = Math.min(MAX_MS, this.targetMs + 40);
        this.last *= 0.9;
        out[j] = this.last;
        continue;
      }
      // Fades for skips and flushes.
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
          continue;
        }
        if (this.pendingSkip > 0) {
          this.read += Math.min(this.pendingSkip, Math.max(0, this.available() - step - 1));
          this.pendingSkip = 0;
          this.skips++;
        }
        this.envGoal = 1;
      }
      const v = this.sample(this.read) * this.env;
      const av = v < 0 ? -v : v;
      if (av > this.peak) this.peak = av;
      out[j] = v;
      this.last = v;
      this.read += step;
      played += step;
    }
    // Count the chunks fully played.
    while (this.chunkEnds.length && this.chunkEnds[0] <= this.read) {
      this.chunkEnds.shift();
      this.chunksPlayed++;
    }
    this.samplesPlayed += Math.floor(played);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);

    if (this.playing) {
      this.sinceUnderrun += out.length;
      if (this.sinceUnderrun > sampleRate * 20 && this.targetMs > MIN_MS) {
        this.targetMs = Math.max(MIN_MS, this.targetMs - 20);
        this.sinceUnderrun = 0;
      }
      // Latency control: if the buffer never fell below target + slack for
      // a whole second, skip the excess.
      this.windowMin = Math.min(this.windowMin, this.available());
      this.windowLen += out.length;
      if (this.windowLen >= sampleRate) {
        const slack = (Math.max(60, this.targetMs / 2) * this.rate) / 1000;
        if (this.windowMin > targetSamples + slack && this.envGoal === 1 && !this.pendingFlush) {
          this.pendingSkip = Math.floor(this.windowMin - targetSamples);
          this.envGoal = 0;
        }
        this.windowMin = Infinity;
        this.windowLen = 0;
      }
    }
    this.statsLen += out.length;
    if (this.statsLen >= sampleRate / 5) {
      this.statsLen = 0;
      this.port.postMessage({
        type: 'stats',
        samplesPlayed: this.samplesPlayed,
        chunksPlayed: this.chunksPlayed,
        underruns: this.underruns,
        skips: this.skips,
        bufferedMs: Math.round((this.available() * 1000) / this.rate),
        targetMs: this.targetMs,
        playing: this.playing,
        peak: this.peak,
      });
      this.peak = 0;
    }
    return true;
  }
}

registerProcessor('pentecost-playback', PlaybackProcessor);
