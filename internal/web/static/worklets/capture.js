// AudioWorklet processor of the speaker app: turns microphone audio at the
// context's rate into 16 kHz mono PCM16 (little-endian) chunks.
//
// Downsampling low-pass filters first (a 33-tap windowed-sinc FIR cutting at
// 7.2 kHz), then reads the filtered signal at 16 kHz with linear
// interpolation. Each chunk of chunkMs (default 40 ms: 640 samples, 1280
// bytes) is posted as {type:'chunk', pcm: ArrayBuffer, rms, peak, len, end,
// tap}; the buffer is transferred, not copied. end is the audio-clock time
// of the input that completed the chunk; with processorOptions.taps, tap is
// the index in the chunk of a loud onset after quiet (else -1), for the
// latency measurement.

const OUT_RATE = 16000;

function lowpass(cutoff, taps) {
  // cutoff in cycles per input sample; Blackman window.
  const h = new Float32Array(taps);
  const m = taps - 1;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - m / 2;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / m) + 0.08 * Math.cos((4 * Math.PI * i) / m);
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    const chunkMs = Math.min(100, Math.max(20, o.chunkMs || 40));
    this.chunkLen = Math.round((OUT_RATE * chunkMs) / 1000);
    this.ratio = sampleRate / OUT_RATE;
    this.fir = this.ratio > 1 ? lowpass((0.45 * OUT_RATE) / sampleRate, 33) : null;
    this.hist = new Float32Array(this.fir ? this.fir.length : 1);
    this.hpos = 0;
    this.n = -1; // index of the newest filtered sample
    this.prev = 0;
    this.cur = 0;
    this.pos = 0; // next output position, in input samples
    this.chunk = new Int16Array(this.chunkLen);
    this.fill = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.taps = !!o.taps;
    this.quiet = 0; // output samples since the signal was last loud (> 0.3)
    this.tap = -1;
    this.t = 0; // audio-clock time of the input sample being processed
  }

  filter(x) {
    if (!this.fir) return x;
    const h = this.fir;
    const len = h.length;
    this.hist[this.hpos] = x;
    let y = 0;
    let k = this.hpos;
    for (let i = 0; i < len; i++) {
      y += h[i] * this.hist[k];
      k = k === 0 ? len - 1 : k - 1;
    }
    this.hpos = this.hpos + 1 === len ? 0 : this.hpos + 1;
    return y;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.chunk[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
    this.sumSq += s * s;
    const a = Math.abs(s);
    if (a > this.peak) this.peak = a;
    if (this.taps) {
      // An onset: loud after at least 0.2 s without anything loud.
      if (a > 0.3) {
        if (this.quiet > OUT_RATE * 0.2 && this.tap < 0) this.tap = this.fill - 1;
        this.quiet = 0;
      } else {
        this.quiet++;
      }
    }
    if (this.fill === this.chunkLen) {
      const pcm = this.chunk.buffer;
      this.port.postMessage({
        type: 'chunk', pcm, rms: Math.sqrt(this.sumSq / this.chunkLen), peak: this.peak,
        len: this.chunkLen, end: this.t, tap: this.tap,
      }, [pcm]);
      this.chunk = new Int16Array(this.chunkLen);
      this.fill = 0;
      this.sumSq = 0;
      this.peak = 0;
      this.tap = -1;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const len = input[0].length;
    const chans = input.length;
    for (let j = 0; j < len; j++) {
      this.t = currentTime + (j + 1) / sampleRate;
      let x = input[0][j];
      if (chans > 1) {
        for (let c = 1; c < chans; c++) x += input[c][j];
        x /= chans;
      }
      this.prev = this.cur;
      this.cur = this.filter(x);
      this.n++;
      // Output positions in (n-1, n] interpolate between prev and cur.
      while (this.pos <= this.n) {
        const frac = this.pos - (this.n - 1);
        this.emit(this.prev + (this.cur - this.prev) * frac);
        this.pos += this.ratio;
      }
    }
    // Keep the counters small: shift the time origin.
    if (this.n > 1 << 20) {
      this.pos -= this.n;
      this.n = 0;
    }
    return true;
  }
}

registerProcessor('pentecost-capture', CaptureProcessor);
