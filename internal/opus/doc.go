// Package opus is Pentecost's seam over the Opus codec (RFC 6716): an
// Encoder and a Decoder of 16 kHz mono speech, and a parser of Opus packets.
//
// The codec itself is libopus, reached through cgo (gopkg.in/hraban/opus.v2),
// and is compiled in only with the build tags `opus,nolibopusfile` (the
// second keeps hraban/opus from also wanting libopusfile, which only its Ogg
// file reader uses). A plain `go build` has no cgo dependency: Available is
// false there and NewEncoder and NewDecoder return an *UnavailableError, so
// every caller can say what it cannot do instead of failing to build. The
// packet parser (ParsePacket) is pure Go and works in every build: a server
// without libopus can still check and time the Opus packets it relays.
//
// Choices for speech over WebSockets (docs/architecture.md, "Opus"):
//
//   - Input and output are 16 kHz mono PCM16, the wire protocol's PCM
//     format, so no resampling happens anywhere on the server. The encoder's
//     bandwidth is capped at wideband (8 kHz audio band), all a 16 kHz input
//     holds. Decoders elsewhere (browsers) may decode at 48 kHz: an Opus
//     packet decodes at any of 8, 12, 16, 24 or 48 kHz.
//   - Application VoIP by default: it favours intelligibility of speech
//     (SILK and hybrid modes, speech-tuned processing); Audio is there for
//     music, chosen per encoder.
//   - 24 kbit/s by default: good wideband speech with room to spare
//     (Opus's own guidance is 16-20 kbit/s for wideband speech), and with the
//     16-byte audio header a listener receives about 26-31 kbit/s depending
//     on the packet duration, against 262 kbit/s of PCM16.
//   - In-band FEC off. FEC repairs the loss of isolated packets on lossy
//     datagram transports; Pentecost's packets travel over TCP and are only
//     ever lost when a slow listener's queue drops its oldest audio, which
//     drops runs of packets that FEC (which carries a copy of the previous
//     packet only) cannot repair, while it would cost bitrate on every
//     packet for every listener.
//   - DTX off. Discontinuous transmission would stop sending packets in
//     silence, and listeners reconstruct timing from consecutive sequence
//     numbers (one packet is always PacketMs of audio); gaps would then read
//     as losses. Silence costs a few bytes per packet with VBR anyway.
//   - Packet loss is concealed at the decoder (Decoder.Conceal): the
//     listener calls it for the packets a gap in sequence numbers says are
//     missing.
package opus
