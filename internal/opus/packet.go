package opus

import (
	"errors"
	"fmt"
	"time"
)

// Mode is the coding mode of a packet, from its configuration number.
type Mode int

const (
	ModeSILK Mode = iota
	ModeHybrid
	ModeCELT
)

func (m Mode) String() string {
	switch m {
	case ModeSILK:
		return "silk"
	case ModeHybrid:
		return "hybrid"
	case ModeCELT:
		return "celt"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Bandwidth is the audio band a packet codes.
type Bandwidth int

const (
	Narrowband    Bandwidth = iota // 4 kHz
	Mediumband                     // 6 kHz
	Wideband                       // 8 kHz
	SuperWideband                  // 12 kHz
	Fullband                       // 20 kHz
)

func (b Bandwidth) String() string {
	switch b {
	case Narrowband:
		return "narrowband"
	case Mediumband:
		return "mediumband"
	case Wideband:
		return "wideband"
	case SuperWideband:
		return "superwideband"
	case Fullband:
		return "fullband"
	}
	return fmt.Sprintf("Bandwidth(%d)", int(b))
}

// Packet is what the framing of an Opus packet says (RFC 6716, section 3):
// the table-of-contents byte and the frame count.
type Packet struct {
	Config    int // 0-31
	Mode      Mode
	Bandwidth Bandwidth
	Stereo    bool
	Frames    int // frames in the packet, 1 to 48
	// FrameSamples48 is one frame's duration in 48 kHz samples (120 for
	// 2.5 ms up to 2880 for 60 ms).
	FrameSamples48 int
}

// Duration is the packet's audio duration.
func (p Packet) Duration() time.Duration {
	return time.Duration(p.Frames*p.FrameSamples48) * time.Second / 48000
}

// Samples is the packet's length in samples at rate (8000, 12000, 16000,
// 24000 or 48000).
func (p Packet) Samples(rate int) int { return p.Frames * p.FrameSamples48 * rate / 48000 }

// Errors of ParsePacket. Each malformed packet wraps ErrMalformed.
var (
	ErrMalformed = errors.New("malformed opus packet")
	errEmpty     = fmt.Errorf("%w: empty", ErrMalformed)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Frame durations (48 kHz samples) and bands by configuration number
// (RFC 6716, table 2).
var (
	silkFrames     = [4]int{480, 960, 1920, 2880}
	hybridFrames   = [2]int{480, 960}
	celtFrames     = [4]int{120, 240, 480, 960}
	celtBandwidths = [4]Bandwidth{Narrowband, Wideband, SuperWideband, Fullband}
)

// maxFrameBytes is the largest frame RFC 6716 allows (R2).
const maxFrameBytes = 1275

// ParsePacket checks the framing of one Opus packet against the rules of
// RFC 6716, section 3.4 (R1-R7) and returns what its header says. It does
// not decode the frames: a packet that passes can still hold a corrupt
// frame, which a decoder then conceals.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) == 0 { // R1
		return Packet{}, errEmpty
	}
	toc := b[0]
	p := Packet{Config: int(toc >> 3), Stereo: toc&0x04 != 0}
	switch c := p.Config; {
	case c < 12:
		p.Mode, p.Bandwidth = ModeSILK, Bandwidth(c/4)
		p.FrameSamples48 = silkFrames[c%4]
	case c < 16:
		p.Mode, p.Bandwidth = ModeHybrid, SuperWideband+Bandwidth((c-12)/2)
		p.FrameSamples48 = hybridFrames[c%2]
	default:
		p.Mode = ModeCELT
		p.Bandwidth = celtBandwidths[(c-16)/4]
		p.FrameSamples48 = celtFrames[c%4]
	}
	rest := b[1:]
	switch toc & 0x03 {
	case 0: // one frame
		p.Frames = 1
		if len(rest) > maxFrameBytes {
			return p, malformed("frame of %d bytes exceeds %d", len(rest), maxFrameBytes)
		}
	case 1: // two frames of equal size (R3)
		p.Frames = 2
		if len(rest)%2 != 0 {
			return p, malformed("code 1 packet with an odd payload of %d bytes", len(rest))
		}
		if len(rest)/2 > maxFrameBytes {
			return p, malformed("frame of %d bytes exceeds %d", len(rest)/2, maxFrameBytes)
		}
	case 2: // two frames, the first's length coded (R4)
		p.Frames = 2
		n1, used, err := frameLength(rest)
		if err != nil {
			return p, err
		}
		rest = rest[used:]
		if n1 > len(rest) {
			return p, malformed("first frame of %d bytes but %d remain", n1, len(rest))
		}
		if len(rest)-n1 > maxFrameBytes {
			return p, malformed("second frame of %d bytes exceeds %d", len(rest)-n1, maxFrameBytes)
		}
	case 3: // a frame count byte, then optional padding and lengths (R5-R7)
		if len(rest) < 1 {
			return p, malformed("code 3 packet without its frame count byte")
		}
		vbr, padded, m := rest[0]&0x80 != 0, rest[0]&0x40 != 0, int(rest[0]&0x3f)
		rest = rest[1:]
		if m == 0 {
			return p, malformed("code 3 packet with 0 frames")
		}
		if m*p.FrameSamples48 > 5760 {
			return p, malformed("%d frames of %d samples exceed 120 ms", m, p.FrameSamples48)
		}
		p.Frames = m
		if padded {
			pad := 0
			for {
				if len(rest) == 0 {
					return p, malformed("padding length runs past the packet")
				}
				v := int(rest[0])
				rest = rest[1:]
				if v == 255 {
					pad += 254
					continue
				}
				pad += v
				break
			}
			if pad > len(rest) {
				return p, malformed("padding of %d bytes but %d remain", pad, len(rest))
			}
			rest = rest[:len(rest)-pad]
		}
		if !vbr {
			if len(rest)%m != 0 {
				return p, malformed("constant-bitrate payload of %d bytes is not %d equal frames", len(rest), m)
			}
			if len(rest)/m > maxFrameBytes {
				return p, malformed("frame of %d bytes exceeds %d", len(rest)/m, maxFrameBytes)
			}
			break
		}
		total := 0
		for i := 0; i < m-1; i++ {
			n, used, err := frameLength(rest)
			if err != nil {
				return p, err
			}
			rest = rest[used:]
			total += n
		}
		if total > len(rest) {
			return p, malformed("frame lengths add up to %d bytes but %d remain", total, len(rest))
		}
		if len(rest)-total > maxFrameBytes {
			return p, malformed("last frame of %d bytes exceeds %d", len(rest)-total, maxFrameBytes)
		}
	}
	return p, nil
}

// frameLength reads a 1- or 2-byte frame length (RFC 6716, 3.2.1).
func frameLength(b []byte) (n, used int, err error) {
	if len(b) < 1 {
		return 0, 0, malformed("frame length runs past the packet")
	}
	if b[0] < 252 {
		return int(b[0]), 1, nil
	}
	if len(b) < 2 {
		return 0, 0, malformed("two-byte frame length runs past the packet")
	}
	return int(b[1])*4 + int(b[0]), 2, nil
}
