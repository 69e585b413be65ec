// The decode stage of the listener's player: wire payloads in, Float32
// samples out, before the jitter buffer. One decoder per stream format
// (the session's audioFormat). A decoder is
//   { decode(payload: ArrayBuffer, offset: number, meta), reset(), close() }
// and hands its output to the onSamples(samples, rate, meta) callback it was
// made with, synchronously or later (WebCodecs' AudioDecoder and WASM
// decoders answer asynchronously), in the order of the payloads. meta
// travels with the samples untouched ({gap, arrival}).
//
// Today the only format is pcm16: signed 16-bit little-endian, 16 kHz mono.
// An Opus decoder (WebCodecs AudioDecoder where it exists, which is only in
// secure contexts, else a WASM build) plugs in here.

export const PCM_RATE = 16000;

class PCM16Decoder {
  constructor(onSamples) { this.onSamples = onSamples; }

  decode(payload, offset, meta) {
    const dv = new DataView(payload, offset);
    const n = dv.byteLength >> 1;
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = dv.getInt16(2 * i, true) / 32768;
    this.onSamples(f, PCM_RATE, meta);
  }

  reset() {}

  close() {}
}

const DECODERS = { pcm16: (onSamples) => new PCM16Decoder(onSamples) };

/** canDecode reports whether this browser can play a stream format. */
export function canDecode(format) { return Object.hasOwn(DECODERS, format || 'pcm16'); }

/** createDecoder returns a decoder for format, or null when there is none. */
export function createDecoder(format, onSamples) {
  const make = DECODERS[format || 'pcm16'];
  return make ? make(onSamples) : null;
}
