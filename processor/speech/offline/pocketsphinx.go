package offline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/childproc"
	"github.com/pentecost/pentecost/processor/speech"
)

// DefaultPocketsphinxModel is where Debian's pocketsphinx-en-us puts the US
// English model.
const DefaultPocketsphinxModel = "/usr/share/pocketsphinx/model/en-us"

// PocketsphinxConfig configures NewPocketsphinx.
type PocketsphinxConfig struct {
	// Binary is the recognizer; empty means pocketsphinx_continuous on the
	// PATH.
	Binary string
	// ModelDir holds the model in Debian's layout: the acoustic model in
	// en-us/, the language model en-us.lm.bin and the dictionary
	// cmudict-en-us.dict. Empty means DefaultPocketsphinxModel.
	ModelDir string
	// Args are extra arguments (-lw 10, -beam 1e-60 ...).
	Args []string
}

// Pocketsphinx is a speech.Recognizer for US English with
// pocketsphinx_continuous (pocketsphinx 0.8 / 5prealpha, Debian's
// `pocketsphinx` and `pocketsphinx-en-us`).
//
// Each sentence gets its own process, started (and its model loaded, about
// half a second) before the sentence begins: a spare waits, blocked on its
// input, while the previous sentence is spoken. The sentence's audio is
// written to it as it arrives, so when the sentence ends only the last
// fraction of a second and the final search passes are left (about 0.4 s
// for a 7 s sentence, measured on a 2-core machine). Within a sentence,
// pocketsphinx's own voice detection splits at pauses of 250 ms; each piece
// is published as an interim transcript.
type Pocketsphinx struct {
	bin  string
	args []string
}

// NewPocketsphinx checks that the program and the model are there.
func NewPocketsphinx(c PocketsphinxConfig) (*Pocketsphinx, error) {
	bin := c.Binary
	if bin == "" {
		bin = "pocketsphinx_continuous"
	}
	path, err := lookPath(bin, "pocketsphinx")
	if err != nil {
		return nil, fmt.Errorf("pocketsphinx: %w", err)
	}
	dir := c.ModelDir
	if dir == "" {
		dir = DefaultPocketsphinxModel
	}
	hmm, lm, dict := filepath.Join(dir, "en-us"), filepath.Join(dir, "en-us.lm.bin"), filepath.Join(dir, "cmudict-en-us.dict")
	for _, f := range []string{filepath.Join(hmm, "mdef"), lm, dict} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("pocketsphinx: no US English model in %s (Debian/Ubuntu: apt-get install pocketsphinx-en-us): %w", dir, err)
		}
	}
	args := []string{"-infile", "/dev/stdin", "-hmm", hmm, "-lm", lm, "-dict", dict, "-vad_postspeech", "25"}
	return &Pocketsphinx{bin: path, args: append(args, c.Args...)}, nil
}

// Open implements speech.Recognizer.
func (p *Pocketsphinx) Open(ctx context.Context, lang string) (speech.Recognition, error) {
	if lang != "en" {
		return nil, fmt.Errorf("pocketsphinx has a US English model only, not %q: %w", lang, speech.ErrUnsupported)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &psRecognition{p: p, ctx: ctx, cancel: cancel}
	spare, err := p.start(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	r.spare = spare
	return r, nil
}

type psRecognition struct {
	p      *Pocketsphinx
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	spare *psProc
}

func (r *psRecognition) Begin(partial func(string)) (speech.Utterance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return nil, errClosed
	}
	u := r.spare
	r.spare = nil
	if u == nil || u.hasExited() {
		var err error
		if u, err = r.p.start(r.ctx); err != nil {
			return nil, err
		}
	}
	// The next sentence's process loads its model while this one is
	// spoken. If it cannot start, the next Begin tries again.
	r.spare, _ = r.p.start(r.ctx)
	u.setPartial(partial)
	return u, nil
}

func (r *psRecognition) Close() error {
	r.cancel()
	r.mu.Lock()
	spare := r.spare
	r.spare = nil
	r.mu.Unlock()
	if spare != nil {
		<-spare.exited
	}
	return nil
}

// maxQueued bounds the audio waiting for a slow pocketsphinx: 60 s of 20 ms
// frames.
const maxQueued = 3000

// psProc is one pocketsphinx process, and the utterance it recognizes.
type psProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *childproc.Tail
	in     chan []int16
	inOnce sync.Once
	exited chan struct{}

	mu      sync.Mutex
	lines   []string
	partial func(string)
	werr    error // writing to its stdin failed
	waitErr error
}

func (p *Pocketsphinx) start(ctx context.Context) (*psProc, error) {
	cmd := exec.CommandContext(ctx, p.bin, p.args...)
	cmd.WaitDelay = time.Second
	pp := &psProc{cmd: cmd, stderr: &childproc.Tail{Max: 4096}, in: make(chan []int16, maxQueued), exited: make(chan struct{})}
	cmd.Stderr = pp.stderr
	var err error
	if pp.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("pocketsphinx: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("pocketsphinx: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pocketsphinx: %w", err)
	}
	go pp.write()
	go pp.read(stdout)
	return pp, nil
}

func (pp *psProc) hasExited() bool {
	select {
	case <-pp.exited:
		return true
	default:
		return false
	}
}

func (pp *psProc) setPartial(f func(string)) {
	pp.mu.Lock()
	pp.partial = f
	pp.mu.Unlock()
}

// write copies queued audio to the process until the utterance ends.
func (pp *psProc) write() {
	var b []byte
	for pcm := range pp.in {
		if pp.werr != nil {
			continue
		}
		b = append(b[:0], speech.PCMBytes(pcm)...)
		if _, err := pp.stdin.Write(b); err != nil {
			pp.mu.Lock()
			pp.werr = err
			pp.mu.Unlock()
		}
	}
	_ = pp.stdin.Close()
}

// read collects the recognized lines until the process exits.
func (pp *psProc) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pp.mu.Lock()
		pp.lines = append(pp.lines, line)
		text, partial := strings.Join(pp.lines, " "), pp.partial
		pp.mu.Unlock()
		if partial != nil {
			partial(speech.SentenceCase(text))
		}
	}
	_, _ = io.Copy(io.Discard, stdout) // a line over 64 KiB: drain the rest
	err := pp.cmd.Wait()
	pp.mu.Lock()
	pp.waitErr = err
	pp.mu.Unlock()
	close(pp.exited)
}

func (pp *psProc) Write(pcm []int16) error {
	pp.mu.Lock()
	werr := pp.werr
	pp.mu.Unlock()
	if werr != nil {
		return fmt.Errorf("pocketsphinx: %w", exitError("write", werr, pp.stderr))
	}
	select {
	case pp.in <- pcm:
		return nil
	default:
		return errors.New("pocketsphinx: falling behind real time by over a minute")
	}
}

func (pp *psProc) End(ctx context.Context) (string, error) {
	pp.inOnce.Do(func() { close(pp.in) })
	select {
	case <-pp.exited:
	case <-ctx.Done():
		_ = pp.cmd.Process.Kill()
		<-pp.exited
		return "", fmt.Errorf("pocketsphinx: %w", ctx.Err())
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.partial = nil
	text := speech.SentenceCase(strings.Join(pp.lines, " "))
	if pp.waitErr != nil && text == "" {
		return "", exitError("pocketsphinx", pp.waitErr, pp.stderr)
	}
	return text, nil
}
