package protocol

import (
	"strconv"
	"strings"

	"github.com/pentecost/pentecost"
)

// Codecs: a session's audioFormat (what its speaker sends) and what a
// listener or processor receives (docs/protocol.md, "Codecs").
const (
	CodecPCM16 = pentecost.FormatPCM16 // signed 16-bit little-endian, 16 kHz, mono
	CodecOpus  = pentecost.FormatOpus  // one Opus packet (RFC 6716) per chunk
)

// SampleRate is the sample rate of all audio on the wire: PCM16's rate, and
// the rate Opus packets are encoded from (they decode at any Opus rate).
const SampleRate = 16000

// DefaultPacketMs is a session's packet duration when it does not choose
// one (why 40: pentecost.DefaultPacketMs).
const DefaultPacketMs = pentecost.DefaultPacketMs

// PacketDurations are the packetMs values a session may choose.
var PacketDurations = []int{20, 40, 60}

// ParseCodec reads a codec (the listener's and processor's `codec`, a
// session's `audioFormat`), case-insensitive and trimmed. Empty gives def;
// another value is INVALID_PARAMETER naming field.
func ParseCodec(field, v, def string) (string, error) {
	switch c := strings.ToLower(strings.TrimSpace(v)); c {
	case "":
		return def, nil
	case CodecPCM16, CodecOpus:
		return c, nil
	}
	return "", pentecost.Invalid(field, "must be pcm16 or opus")
}

// CheckPacketMs checks a session's packetMs; 0 (absent) stays 0: the
// server's default then applies.
func CheckPacketMs(ms int) (int, error) {
	if ms == 0 {
		return 0, nil
	}
	for _, d := range PacketDurations {
		if d == ms {
			return ms, nil
		}
	}
	return 0, pentecost.Invalid("packetMs", "must be 20, 40 or 60 (milliseconds)")
}

// ParsePacketMs reads packetMs from a query string value; empty gives 0:
// the server's default.
func ParsePacketMs(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.Atoi(v)
	if err != nil {
		return 0, pentecost.Invalid("packetMs", "must be 20, 40 or 60 (milliseconds)")
	}
	if ms == 0 {
		return 0, pentecost.Invalid("packetMs", "must be 20, 40 or 60 (milliseconds)")
	}
	return CheckPacketMs(ms)
}
