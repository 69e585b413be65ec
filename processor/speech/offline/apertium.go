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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pentecost/pentecost/internal/childproc"
	"github.com/pentecost/pentecost/processor/speech"
)

// iso639_3 maps the two-letter codes of the protocol to the three-letter
// codes Apertium names its pairs with (eng-spa). Pairs named with two
// letters (older packages: en-es) are found too.
var iso639_3 = map[string]string{
	"af": "afr", "an": "arg", "ar": "ara", "ast": "ast", "be": "bel", "bg": "bul", "br": "bre",
	"ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell", "en": "eng",
	"eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fo": "fao",
	"fr": "fra", "ga": "gle", "gl": "glg", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun",
	"id": "ind", "is": "isl", "it": "ita", "ja": "jpn", "kk": "kaz", "ko": "kor", "lt": "lit",
	"lv": "lav", "mk": "mkd", "ms": "msa", "mt": "mlt", "nb": "nob", "nl": "nld", "nn": "nno",
	"no": "nor", "oc": "oci", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sc": "srd",
	"sk": "slk", "sl": "slv", "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swa", "tr": "tur",
	"tt": "tat", "uk": "ukr", "ur": "urd", "uz": "uzb", "zh": "zho",
}

// DefaultApertiumModes is where Debian's Apertium pairs install their modes.
const DefaultApertiumModes = "/usr/share/apertium/modes"

// Apertium is a speech.TextTranslator with the Apertium rule-based
// translator (Debian's `apertium` plus a pair package such as
// `apertium-eng-spa`). Pairs are found at run time in the modes directory.
//
// Each pair runs as one long-lived pipeline of Apertium's programs in
// null-flush mode (each program flushes at a NUL byte), built by
// apertium-wblank-mode from the pair's mode file: a sentence in, its
// translation out, in milliseconds, where a fresh `apertium` call loads
// every dictionary again. A pipeline that fails or times out is killed and
// started again on the next sentence.
type Apertium struct {
	dir    string
	wblank string
	bash   string
	pairs  map[[2]string]string // {from, to} → mode name

	mu     sync.Mutex
	procs  map[string]*apertiumProc
	closed bool
}

// NewApertium lists the installed pairs in dir (empty: $APERTIUM_DATADIR/modes,
// else DefaultApertiumModes). Having no pair is not an error: every
// language then reports that it has none.
func NewApertium(dir string) (*Apertium, error) {
	if _, err := lookPath("apertium", "apertium"); err != nil {
		return nil, fmt.Errorf("apertium: %w", err)
	}
	wblank, err := lookPath("apertium-wblank-mode", "apertium (3.8 or later)")
	if err != nil {
		return nil, fmt.Errorf("apertium: %w", err)
	}
	bash, err := lookPath("bash", "bash")
	if err != nil {
		return nil, fmt.Errorf("apertium: %w", err)
	}
	if dir == "" {
		dir = DefaultApertiumModes
		if d := os.Getenv("APERTIUM_DATADIR"); d != "" {
			dir = filepath.Join(d, "modes")
		}
	}
	a := &Apertium{dir: dir, wblank: wblank, bash: bash, pairs: map[[2]string]string{}, procs: map[string]*apertiumProc{}}
	modes, _ := filepath.Glob(filepath.Join(dir, "*.mode"))
	to2 := map[string]string{}
	for two, three := range iso639_3 {
		to2[three], to2[two] = two, two
	}
	for _, m := range modes {
		name := strings.TrimSuffix(filepath.Base(m), ".mode")
		from, to, ok := strings.Cut(name, "-")
		// Variants (spa-eng_US) and multi-step modes (eng-spa-tagger)
		// are not plain pairs.
		if !ok || strings.ContainsAny(to, "_-") {
			continue
		}
		f, t := to2[from], to2[to]
		if f == "" || t == "" {
			continue
		}
		a.pairs[[2]string{f, t}] = name
	}
	return a, nil
}

// Pairs lists the installed pairs as mode names (eng-spa).
func (a *Apertium) Pairs() []string {
	var out []string
	for _, m := range a.pairs {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Targets lists the languages some installed pair translates into.
func (a *Apertium) Targets() []string {
	var out []string
	for k := range a.pairs {
		if !slices.Contains(out, k[1]) {
			out = append(out, k[1])
		}
	}
	slices.Sort(out)
	return out
}

// Prepare implements speech.TextTranslator: the pair must be installed;
// its pipeline is started in the background.
func (a *Apertium) Prepare(ctx context.Context, from, to string) error {
	mode, ok := a.pairs[[2]string{from, to}]
	if !ok {
		f, t := iso639_3[from], iso639_3[to]
		if f == "" {
			f = from
		}
		if t == "" {
			t = to
		}
		return fmt.Errorf("no Apertium pair %s-%s in %s (Debian/Ubuntu: apt-get install apertium-%s-%s, where it exists): %w",
			f, t, a.dir, f, t, speech.ErrUnsupported)
	}
	go func() { _, _ = a.proc(mode) }()
	return nil
}

// Translate implements speech.TextTranslator.
func (a *Apertium) Translate(ctx context.Context, text, from, to string) (string, error) {
	mode, ok := a.pairs[[2]string{from, to}]
	if !ok {
		return "", fmt.Errorf("apertium: no pair for %s → %s: %w", from, to, speech.ErrUnsupported)
	}
	p, err := a.proc(mode)
	if err != nil {
		return "", err
	}
	out, err := p.translate(ctx, text)
	if err != nil {
		a.drop(mode, p)
		return "", fmt.Errorf("apertium %s: %w", mode, err)
	}
	return out, nil
}

// Close stops every pipeline.
func (a *Apertium) Close() error {
	a.mu.Lock()
	a.closed = true
	procs := a.procs
	a.procs = map[string]*apertiumProc{}
	a.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	return nil
}

func (a *Apertium) proc(mode string) (*apertiumProc, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if p := a.procs[mode]; p != nil {
		return p, nil
	}
	script, err := exec.Command(a.wblank, "-z", filepath.Join(a.dir, mode+".mode")).Output()
	if err != nil {
		return nil, fmt.Errorf("apertium: build the %s pipeline: %w", mode, err)
	}
	// The mode's script reads $1 as the generator's option (-n: no marks
	// on unknown words) and $2 as the tagger's (none).
	// The pipeline outlives this call: its context is ended by kill.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, a.bash, "-c", string(script), "apertium", "-n", "")
	childproc.SetProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	p := &apertiumProc{cmd: cmd, cancel: cancel, stderr: &childproc.Tail{Max: 2048}, exited: make(chan struct{}), turn: make(chan struct{}, 1)}
	p.turn <- struct{}{}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("apertium: start the %s pipeline: %w", mode, err)
	}
	p.stdout = bufio.NewReader(stdout)
	go func() {
		p.waitErr = cmd.Wait()
		cancel()
		close(p.exited)
	}()
	a.procs[mode] = p
	return p, nil
}

// drop forgets a failed pipeline, so the next sentence starts a new one.
func (a *Apertium) drop(mode string, p *apertiumProc) {
	a.mu.Lock()
	if a.procs[mode] == p {
		delete(a.procs, mode)
	}
	a.mu.Unlock()
	p.kill()
}

// maxApertiumOutput bounds one translation: far more than a sentence.
const maxApertiumOutput = 64 << 10

type apertiumProc struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc // kills the pipeline's process group
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *childproc.Tail
	exited  chan struct{}
	waitErr error

	turn chan struct{} // one sentence at a time; a token while free
}

type readResult struct {
	b   []byte
	err error
}

func (p *apertiumProc) translate(ctx context.Context, text string) (string, error) {
	// Sessions share a pair's pipeline; waiting for another session's
	// sentence counts against this one's deadline.
	select {
	case <-p.turn:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { p.turn <- struct{}{} }()
	// A blank before the NUL: the first program of the pipeline only
	// finishes its last word when something follows it.
	if _, err := io.WriteString(p.stdin, apertiumEscape(text)+" \x00"); err != nil {
		return "", p.failed(err)
	}
	done := make(chan readResult, 1)
	go func() {
		var out []byte
		for {
			b, err := p.stdout.ReadSlice(0)
			out = append(out, b...)
			if len(out) > maxApertiumOutput {
				done <- readResult{err: fmt.Errorf("translation over %d bytes", maxApertiumOutput)}
				return
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				done <- readResult{out, err}
				return
			}
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", p.failed(r.err)
		}
		return apertiumUnescape(strings.TrimSuffix(string(r.b), "\x00")), nil
	case <-ctx.Done():
		p.kill() // unblocks the reader
		<-done
		return "", ctx.Err()
	}
}

func (p *apertiumProc) failed(err error) error {
	select {
	case <-p.exited:
		return exitError("pipeline exited", p.waitErr, p.stderr)
	default:
		return err
	}
}

func (p *apertiumProc) kill() {
	p.cancel()
	<-p.exited
}

// apertiumEscape writes text in Apertium's stream format, where these
// characters are markup unless escaped with a backslash; a NUL would end
// the sentence early.
func apertiumEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '[', ']', '^', '$', '@', '/', '<', '>', '{', '}', '~', '#', '*', '+', '|':
			b.WriteByte('\\')
		case 0:
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// apertiumUnescape reads text back from the stream format: escapes
// removed, and the marks Apertium puts on words it could not translate or
// inflect (*, @, #) dropped, which listeners should not see.
func apertiumUnescape(s string) string {
	var b strings.Builder
	wordStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
			wordStart = false
			continue
		case wordStart && (c == '*' || c == '@' || c == '#'):
			continue
		}
		b.WriteByte(c)
		wordStart = c == ' '
	}
	return strings.TrimSpace(b.String())
}
