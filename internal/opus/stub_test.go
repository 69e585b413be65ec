//go:build !opus

package opus

import (
	"errors"
	"strings"
	"testing"
)

// The plain build compiles and says plainly that it has no codec, and how
// to get one.
func TestPlainBuildHasNoCodec(t *testing.T) {
	if Available {
		t.Fatal("Available in a build without the opus tag")
	}
	if Version() != "" {
		t.Errorf("Version %q without libopus", Version())
	}
	_, encErr := NewEncoder(EncoderConfig{})
	_, decErr := NewDecoder()
	for op, err := range map[string]error{"encoder": encErr, "decoder": decErr} {
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.Op != op || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err %v, want *UnavailableError", op, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "-tags opus,nolibopusfile") || !strings.Contains(msg, "libopus") {
			t.Errorf("%s: message %q does not say how to get Opus", op, msg)
		}
	}
}
