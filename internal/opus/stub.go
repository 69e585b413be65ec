//go:build !opus

package opus

// Available reports whether this build has the Opus codec.
const Available = false

// Version is the linked libopus's version string: empty without libopus.
func Version() string { return "" }

// The stubs keep the package's API the same in both builds; the
// constructors fail, so their methods are never reached.

type libEncoder struct{}

func newLibEncoder(EncoderConfig) (*libEncoder, error) {
	return nil, &UnavailableError{Op: "encoder"}
}

func (*libEncoder) encode(dst []byte, _ []int16) ([]byte, error) {
	return dst, &UnavailableError{Op: "encoder"}
}

func (*libEncoder) reset() error { return &UnavailableError{Op: "encoder"} }

type libDecoder struct{}

func newLibDecoder() (*libDecoder, error) { return nil, &UnavailableError{Op: "decoder"} }

func (*libDecoder) decode([]byte, []int16) (int, error) { return 0, &UnavailableError{Op: "decoder"} }

func (*libDecoder) conceal([]int16) error { return &UnavailableError{Op: "decoder"} }

func (*libDecoder) reset() error { return &UnavailableError{Op: "decoder"} }
