// The decode stage of the listener's player: wire payloads in, Float32
// samples out, before the jitter buffer. One decoder per stream codec (the
// codec sessionJoined names; a new stream gets a new decoder). A decoder is
//   { kind, decode(payload: ArrayBuffer, offset: number, meta), close() }
// and hands its output to the onSamples(samples, rate, meta) callback it was
// made with, synchronously or later (WebCodecs' AudioDecoder and the WASM
// decoder answer asynchronously), in the order of the payloads. meta
// travels with the samples untouched ({gap, arrival}).
//
// Codecs (docs/protocol.md 7.4):
// - pcm16: signed 16-bit little-endian, 16 kHz mono;
// - opus: one Opus packet per payload. Decoded by WebCodecs' AudioDecoder
//   where the browser has it (secure contexts only: https, localhost), else
//   by the vendored WASM build of libopus (opus-decoder, see
//   /static/vendor/opus-decoder/README.md): on a venue's plain-HTTP
//   address that is every browser. docs/webapps.md, "Opus in the browser".

import { opusOverride } from '../common.js';

export const PCM_RATE = 16000;

class PCM16Decoder {
  constructor(onSamples) {
    this.kind = 'pcm16';
    this.onSamples = onSamples;
  }

  decode(payload, offset, meta) {
    const dv = new DataView(payload, offset);
    const n = dv.byteLength >> 1;
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = dv.getInt16(2 * i, true) / 32768;
    this.onSamples(f, PCM_RATE, meta);
  }

  close() {}
}

/**
 * opusPath says how this browser decodes Opus: 'webcodecs', 'wasm' or ''
 * (common.js's opusOverride can force 'wasm' or '').
 */
export function opusPath() {
  const o = opusOverride();
  if (o === 'off') return '';
  if (o !== 'wasm' && typeof window.AudioDecoder === 'function' && typeof window.EncodedAudioChunk === 'function') return 'webcodecs';
  if (typeof WebAssembly === 'object') return 'wasm';
  return '';
}

// WebCodecs: the browser's own Opus decoder. Outputs arrive in decode order,
// so the metas wait in a queue. A decoder that fails (the browser turned
// the configuration down, or a packet) hands over to the WASM decoder.
class WebCodecsOpusDecoder {
  constructor(onSamples, onFail) {
    this.kind = 'webcodecs';
    this.onSamples = onSamples;
    this.onFail = onFail;
    this.metas = [];
    this.ts = 0;
    this.open();
  }

  open() {
    this.metas = [];
    this.dec = new AudioDecoder({
      output: (ad) => this.output(ad),
      error: (e) => this.fail(e),
    });
    this.dec.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
  }

  output(ad) {
    const meta = this.metas.shift() || {};
    try {
      const f = new Float32Array(ad.numberOfFrames);
      ad.copyTo(f, { planeIndex: 0, format: 'f32-planar' });
      this.onSamples(f, ad.sampleRate, meta);
    } finally {
      ad.close();
    }
  }

  fail(e) {
    if (this.failed) return;
    this.failed = true;
    this.onFail(e);
  }

  decode(payload, offset, meta) {
    if (this.failed || this.dec.state !== 'configured') return;
    this.metas.push(meta);
    // Timestamps only order the chunks; 1 ms apart will do.
    this.ts += 1000;
    try {
      this.dec.decode(new EncodedAudioChunk({ type: 'key', timestamp: this.ts, data: new Uint8Array(payload, offset) }));
    } catch (e) {
      this.fail(e);
    }
  }

  close() {
    try { this.dec.close(); } catch { /* already closed */ }
  }
}

// The WASM decoder's script is loaded once, when the first Opus stream
// needs it (88 KB; the listener of a pcm16 session never fetches it).
let wasmScript = null;

function loadWasm() {
  if (!wasmScript) {
    // A failed load (a fetch lost on a crowded Wi-Fi) is not kept: the next
    // decoder tries again.
    wasmScript = new Promise((resolve, reject) => {
      if (window['opus-decoder']) {
        resolve(window['opus-decoder']);
        return;
      }
      const s = document.createElement('script');
      s.src = '/static/vendor/opus-decoder/opus-decoder.min.js';
      s.onload = () => (window['opus-decoder'] ? resolve(window['opus-decoder']) : reject(new Error('opus-decoder did not load')));
      s.onerror = () => reject(new Error('opus-decoder could not be fetched'));
      document.head.appendChild(s);
    }).catch((e) => {
      wasmScript = null;
      throw e;
    });
  }
  return wasmScript;
}

// WASM: libopus compiled to WebAssembly, decoding on the main thread
// straight to 16 kHz mono. Packets that arrive while it loads wait (a
// second's worth at most). If it cannot load, onFail(error) says so.
class WasmOpusDecoder {
  constructor(onSamples, onFail) {
    this.kind = 'wasm';
    this.onSamples = onSamples;
    this.waiting = [];
    this.dec = null;
    this.closed = false;
    loadWasm()
      .then(async (m) => {
        const dec = new m.OpusDecoder({
          channels: 1, streamCount: 1, coupledStreamCount: 0, channelMappingTable: [0], sampleRate: PCM_RATE,
        });
        await dec.ready;
        if (this.closed) {
          dec.free();
          return;
        }
        this.dec = dec;
        for (const [p, m2] of this.waiting) this.run(p, m2);
        this.waiting = [];
      })
      .catch((e) => {
        this.waiting = [];
        if (!this.closed) onFail(e);
      });
  }

  run(packet, meta) {
    const r = this.dec.decodeFrame(packet);
    if (!r || !r.samplesDecoded || !r.channelData || !r.channelData[0]) return;
    // The output may be a view of the decoder's memory: copy it.
    this.onSamples(new Float32Array(r.channelData[0].subarray(0, r.samplesDecoded)), r.sampleRate || PCM_RATE, meta);
  }

  decode(payload, offset, meta) {
    const packet = new Uint8Array(payload.slice(offset));
    if (this.dec) this.run(packet, meta);
    else if (this.waiting.length < 50) this.waiting.push([packet, meta]);
  }

  close() {
    this.closed = true;
    if (this.dec) this.dec.free();
    this.dec = null;
  }
}

// OpusDecoder picks WebCodecs, and falls back to WASM for good if WebCodecs
// fails; onFail(error) reports that the WASM decoder could not load either.
class OpusDecoder {
  constructor(onSamples, onFail) {
    this.onSamples = onSamples;
    this.onFail = onFail;
    this.impl = null;
    if (opusPath() === 'webcodecs') {
      try {
        this.impl = new WebCodecsOpusDecoder(onSamples, () => this.fallBack());
      } catch {
        this.impl = null;
      }
    }
    if (!this.impl) this.impl = new WasmOpusDecoder(onSamples, onFail);
  }

  get kind() { return this.impl.kind; }

  fallBack() {
    const old = this.impl;
    this.impl = new WasmOpusDecoder(this.onSamples, this.onFail);
    old.close();
  }

  decode(payload, offset, meta) { this.impl.decode(payload, offset, meta); }

  close() { this.impl.close(); }
}

const DECODERS = {
  pcm16: (onSamples) => new PCM16Decoder(onSamples),
  opus: (onSamples, onFail) => new OpusDecoder(onSamples, onFail),
};

/** canDecode reports whether this browser can play a stream codec. */
export function canDecode(codec) {
  const c = codec || 'pcm16';
  if (c === 'opus') return opusPath() !== '';
  return Object.hasOwn(DECODERS, c);
}

/**
 * createDecoder returns a decoder for codec, or null when there is none.
 * onFail(error) is called if the decoder stops for good (Opus: neither
 * WebCodecs nor the WASM decoder could run).
 */
export function createDecoder(codec, onSamples, onFail = () => {}) {
  const c = codec || 'pcm16';
  if (!canDecode(c)) return null;
  return DECODERS[c](onSamples, onFail);
}
