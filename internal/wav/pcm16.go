package wav

import (
	"encoding/binary"
	"slices"
)

// AppendPCM16 appends samples to dst as pcm16, 16-bit little-endian: the
// byte form of the session format on the wire and in files.
func AppendPCM16(dst []byte, samples []int16) []byte {
	dst = slices.Grow(dst, 2*len(samples))
	for _, v := range samples {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst
}

// AppendSamples appends the samples of the pcm16 bytes b to dst. An odd
// last byte, half a sample, is dropped: no speaker sends one, and a reader
// that splits a stream keeps it for its next call itself.
func AppendSamples(dst []int16, b []byte) []int16 {
	n := len(b) / 2
	dst = slices.Grow(dst, n)
	for i := range n {
		dst = append(dst, int16(binary.LittleEndian.Uint16(b[2*i:])))
	}
	return dst
}
