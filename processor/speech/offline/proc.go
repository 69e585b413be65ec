// Package offline implements the speech pipeline's stages with programs
// Debian ships, for a chain that needs no account and no network:
// recognition with pocketsphinx (Pocketsphinx), translation with Apertium
// (Apertium) and synthesis with espeak-ng (Espeak).
//
// Their quality is modest: pocketsphinx's US English model mishears a lot,
// and worse on synthetic or distant voices; Apertium's rule-based
// translations are readable but clumsy; espeak-ng sounds robotic. They prove
// the pipeline end to end on any machine. For quality, use the HTTP stages
// (package webapi) with a Whisper server and a neural translator.
//
// Start-up costs are kept off the speaker's critical path: pocketsphinx
// loads its model in a spare process before the next sentence begins, and
// the sentence's audio streams into it while it is spoken; Apertium runs as
// one long-lived pipeline per language pair in null-flush mode (a fresh
// `apertium` call costs up to a second or two of loading; a warm one a few
// milliseconds); espeak-ng starts in milliseconds and runs per sentence.
package offline

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/pentecost/pentecost/internal/childproc"
)

// lookPath finds a program, or says which Debian package has it.
func lookPath(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (Debian/Ubuntu: apt-get install %s): %w", name, pkg, err)
	}
	return p, nil
}

// exitError adds what a program said on stderr to the error of its exit.
func exitError(name string, err error, stderr *childproc.Tail) error {
	if err == nil {
		return nil
	}
	msg := lastLine(stderr.String())
	if msg == "" {
		return fmt.Errorf("%s: %w", name, err)
	}
	return fmt.Errorf("%s: %w: %s", name, err, msg)
}

// lastLine is the last non-empty line of s, at most 300 bytes.
func lastLine(s string) string {
	end := len(s)
	for end > 0 && (s[end-1] == '\n' || s[end-1] == '\r' || s[end-1] == ' ') {
		end--
	}
	start := end
	for start > 0 && s[start-1] != '\n' {
		start--
	}
	line := s[start:end]
	if len(line) > 300 {
		line = line[:300]
	}
	return line
}

var errClosed = errors.New("closed")
