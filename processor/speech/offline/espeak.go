package offline

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/childproc"
	"github.com/pentecost/pentecost/processor/speech"
)

// EspeakConfig configures NewEspeak.
type EspeakConfig struct {
	// Binary is the synthesizer; empty means espeak-ng on the PATH.
	Binary string
	// Voices maps a language to an espeak-ng voice (es → es-419); a
	// language not listed uses its own code, which espeak-ng resolves to
	// its default voice for the language.
	Voices map[string]string
	// Speed in words per minute; 0 is espeak-ng's default (175).
	Speed int
}

// Espeak is a speech.Synthesizer with espeak-ng (Debian's `espeak-ng`):
// about a hundred languages, robotic but clear. It starts in milliseconds,
// so each sentence runs its own process; its WAV output is streamed as it
// is written.
type Espeak struct {
	bin    string
	voices map[string]string
	speed  int

	mu     sync.Mutex
	voiced map[string]error // Prepare's verdict per voice
}

// NewEspeak checks that the program is there.
func NewEspeak(c EspeakConfig) (*Espeak, error) {
	bin := c.Binary
	if bin == "" {
		bin = "espeak-ng"
	}
	path, err := lookPath(bin, "espeak-ng")
	if err != nil {
		return nil, fmt.Errorf("espeak-ng: %w", err)
	}
	return &Espeak{bin: path, voices: c.Voices, speed: c.Speed, voiced: map[string]error{}}, nil
}

func (e *Espeak) voice(lang string) string {
	if v := e.voices[lang]; v != "" {
		return v
	}
	return lang
}

// Prepare implements speech.Synthesizer: it speaks a word with the
// language's voice, which fails when espeak-ng has no such voice.
func (e *Espeak) Prepare(ctx context.Context, lang string) error {
	v := e.voice(lang)
	e.mu.Lock()
	err, known := e.voiced[v]
	e.mu.Unlock()
	if known {
		return err
	}
	err = e.run(ctx, "a", v, func([]int16) {})
	if err != nil {
		err = fmt.Errorf("espeak-ng has no voice %q (espeak-ng --voices lists them; --tts-voice %s=VOICE picks one): %w", v, lang, err)
	}
	if ctx.Err() == nil {
		e.mu.Lock()
		e.voiced[v] = err
		e.mu.Unlock()
	}
	return err
}

// Synthesize implements speech.Synthesizer.
func (e *Espeak) Synthesize(ctx context.Context, text, lang string, emit func([]int16)) error {
	return e.run(ctx, text, e.voice(lang), emit)
}

func (e *Espeak) run(ctx context.Context, text, voice string, emit func([]int16)) error {
	args := []string{"-v", voice, "--stdout"}
	if e.speed > 0 {
		args = append(args, "-s", strconv.Itoa(e.speed))
	}
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.WaitDelay = time.Second
	// On stdin, not as an argument: text starting with "-" would be an
	// option. "[[" starts espeak-ng's phoneme input; a space defuses it.
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(text, "[[", "[ ["))
	stderr := &childproc.Tail{Max: 1024}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("espeak-ng: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("espeak-ng: %w", err)
	}
	derr := speech.DecodeWAV(stdout, emit)
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("espeak-ng: %w", ctx.Err())
	}
	if werr != nil {
		return exitError("espeak-ng", werr, stderr)
	}
	if derr != nil {
		return fmt.Errorf("espeak-ng: %w", derr)
	}
	return nil
}
