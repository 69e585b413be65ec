// AudioWorklet processor of the listener app (the path for secure
// contexts): plays from the shared jitter buffer (js/player/jitter.js), one
// 128-frame render quantum at a time, on the audio thread.
//
// Messages from the main thread: {type:'chunk', samples, rate, gap,
// arrival}, {type:'flush'}, {type:'lowDelay', on}. Every 100 ms it posts
// {type:'stats', ...JitterBuffer.takeStats()}; with processorOptions.taps it
// posts {type:'tap', time} (context time of a loud onset) for the latency
// measurement.

import { JitterBuffer } from '../js/player/jitter.js';

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.jb = new JitterBuffer(sampleRate, { lowDelay: !!o.lowDelay, quantumMs: (128 * 1000) / sampleRate, taps: !!o.taps });
    this.jb.onTap = (j) => this.port.postMessage({ type: 'tap', time: currentTime + j / sampleRate });
    this.statsLen = 0;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'chunk') this.jb.push(m.samples, m.rate, m);
      else if (m.type === 'flush') this.jb.flush();
      else if (m.type === 'lowDelay') this.jb.setLowDelay(!!m.on);
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    this.jb.pull(out);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.statsLen += out.length;
    if (this.statsLen >= sampleRate / 10) {
      this.statsLen = 0;
      this.port.postMessage({ type: 'stats', ...this.jb.takeStats() });
    }
    return true;
  }
}

registerProcessor('pentecost-playback', PlaybackProcessor);
