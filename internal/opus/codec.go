package opus

import (
	"errors"
	"fmt"
)

// The PCM format of both ends of the codec: the wire protocol's pcm16.
const (
	SampleRate = 16000
	Channels   = 1
)

// Packet durations a session may choose (docs/protocol.md, packetMs).
var PacketDurations = []int{20, 40, 60}

// ValidPacketMs reports whether ms is one of PacketDurations.
func ValidPacketMs(ms int) bool {
	for _, d := range PacketDurations {
		if d == ms {
			return true
		}
	}
	return false
}

// DefaultBitrate is the encoder's target in bits per second.
const DefaultBitrate = 24000

// Application tells the encoder what it encodes.
type Application int

const (
	// VoIP favours the intelligibility of speech: the default.
	VoIP Application = iota
	// Audio favours faithfulness for music and other non-speech signals.
	Audio
)

func (a Application) String() string {
	switch a {
	case VoIP:
		return "voip"
	case Audio:
		return "audio"
	}
	return fmt.Sprintf("Application(%d)", int(a))
}

// EncoderConfig configures NewEncoder. The zero value is valid: 20 ms
// packets at DefaultBitrate for speech.
type EncoderConfig struct {
	// PacketMs is the duration of each packet: 20, 40 or 60 (0 means 20).
	PacketMs int
	// Bitrate in bits per second, 6000 to 128000 (0 means DefaultBitrate).
	Bitrate     int
	Application Application
	// Complexity trades CPU for quality, 1 to 10 (0 means libopus's
	// default, 10).
	Complexity int
}

func (c EncoderConfig) withDefaults() (EncoderConfig, error) {
	if c.PacketMs == 0 {
		c.PacketMs = 20
	}
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	switch {
	case !ValidPacketMs(c.PacketMs):
		return c, fmt.Errorf("opus: packet duration %d ms: want 20, 40 or 60", c.PacketMs)
	case c.Bitrate < 6000 || c.Bitrate > 128000:
		return c, fmt.Errorf("opus: bitrate %d: want 6000 to 128000 bits/s", c.Bitrate)
	case c.Application != VoIP && c.Application != Audio:
		return c, fmt.Errorf("opus: unknown application %v", c.Application)
	case c.Complexity < 0 || c.Complexity > 10:
		return c, fmt.Errorf("opus: complexity %d: want 1 to 10 (0: the default)", c.Complexity)
	}
	return c, nil
}

// FrameSamples is the number of samples in one packet of c.
func (c EncoderConfig) FrameSamples() int {
	ms := c.PacketMs
	if ms == 0 {
		ms = 20
	}
	return SampleRate * ms / 1000
}

// ErrUnavailable is what errors.Is finds in an *UnavailableError.
var ErrUnavailable = errors.New("opus codec not available in this build")

// UnavailableError is returned by NewEncoder and NewDecoder in a build
// without libopus.
type UnavailableError struct {
	Op string // "encoder" or "decoder"
}

func (e *UnavailableError) Error() string {
	return "opus " + e.Op + " unavailable: " + UnavailableReason
}

func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// UnavailableReason says why a plain build has no Opus codec and how to get
// one, for messages to users.
const UnavailableReason = "this binary was built without Opus (it needs libopus and the build tags opus,nolibopusfile: go build -tags opus,nolibopusfile ./cmd/pentecost)"
