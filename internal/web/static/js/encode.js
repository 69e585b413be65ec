// The speaker app's Opus encoder: WebCodecs' AudioEncoder where the browser
// has one that takes this configuration (secure contexts only, which the
// microphone needs anyway), fed the capture worklet's 16 kHz PCM16 chunks,
// giving one packet per packet duration of the session (docs/protocol.md
// 7.4: mono, 16 kHz input, VoIP, 24 kbit/s, no DTX, no in-band FEC).
// Browsers without it send PCM16, and the server encodes for the Opus
// listeners. docs/webapps.md, "Opus in the browser".

import { opusOverride } from './common.js';

const PCM_RATE = 16000;

function config(sampleRate, packetMs) {
  return {
    codec: 'opus', sampleRate, numberOfChannels: 1, bitrate: 24000,
    opus: { application: 'voip', signal: 'voice', frameDuration: packetMs * 1000, usedtx: false, useinbandfec: false },
  };
}

/**
 * opusConfig finds the AudioEncoder configuration this browser takes for
 * packets of packetMs: 16 kHz input if it allows, else 48 kHz (the chunks are
 * then upsampled). null when it cannot encode Opus (or is told not to:
 * common.js's opusOverride).
 */
export async function opusConfig(packetMs) {
  if (opusOverride() === 'off') return null;
  if (typeof window.AudioEncoder !== 'function' || typeof window.AudioData !== 'function') return null;
  for (const rate of [PCM_RATE, 48000]) {
    try {
      const r = await AudioEncoder.isConfigSupported(config(rate, packetMs));
      if (r && r.supported) return r.config;
    } catch { /* not this one */ }
  }
  return null;
}

export class OpusEncoderStage {
  /**
   * @param {object} cfg what opusConfig returned
   * @param {(packet: ArrayBuffer) => void} onPacket called with each packet, in order
   * @param {(e: Error) => void} onError called once if the encoder fails
   */
  constructor(cfg, onPacket, onError) {
    this.rate = cfg.sampleRate;
    this.samples = 0; // samples fed so far: the timestamps
    this.failed = false;
    this.enc = new AudioEncoder({
      output: (chunk) => {
        const b = new ArrayBuffer(chunk.byteLength);
        chunk.copyTo(b);
        onPacket(b);
      },
      error: (e) => {
        if (this.failed) return;
        this.failed = true;
        onError(e);
      },
    });
    this.enc.configure(cfg);
  }

  /** encode takes one chunk of 16 kHz PCM16 (little-endian). */
  encode(pcm) {
    if (this.failed || this.enc.state !== 'configured') return;
    const dv = new DataView(pcm);
    const n = dv.byteLength >> 1;
    const up = this.rate / PCM_RATE;
    const f = new Float32Array(n * up);
    for (let i = 0; i < n; i++) {
      const v = dv.getInt16(2 * i, true) / 32768;
      if (up === 1) {
        f[i] = v;
        continue;
      }
      // Linear interpolation to the next sample: the chunk is band-limited
      // to 8 kHz already.
      const next = i + 1 < n ? dv.getInt16(2 * i + 2, true) / 32768 : v;
      for (let k = 0; k < up; k++) f[i * up + k] = v + ((next - v) * k) / up;
    }
    const ad = new AudioData({
      format: 'f32', sampleRate: this.rate, numberOfChannels: 1, numberOfFrames: f.length,
      timestamp: Math.round((this.samples * 1e6) / this.rate), data: f,
    });
    this.samples += f.length;
    try {
      this.enc.encode(ad);
    } finally {
      ad.close();
    }
  }

  close() {
    try { this.enc.close(); } catch { /* already closed */ }
  }
}
