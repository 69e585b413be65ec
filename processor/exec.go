package processor

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pentecost/pentecost/internal/childproc"
)

// Exec is the exec mode: for each (session, language) it runs Command
// with `sh -c`, writes the source audio to its stdin and publishes what it
// writes to stdout as the translation. The command is killed (with its
// process group) when the stream is no longer wanted, and started again
// after a backoff when it exits on its own.
//
// The command's environment carries PENTECOST_SESSION_ID,
// PENTECOST_LANGUAGE (the target), PENTECOST_SOURCE_LANGUAGE,
// PENTECOST_AUDIO_FORMAT (pcm16 or opus) and PENTECOST_SAMPLE_RATE (16000,
// for Opus too: its packets are encoded from 16 kHz audio); PENTECOST_TOKEN
// is removed from it.
//
// pcm16 sessions: stdin is the raw stream (16-bit little-endian, 16 kHz,
// mono), and stdout is read as the same format and published in chunks of at
// most the source chunk size (whatever a read returns, whole samples only,
// at most MaxChunk bytes).
//
// opus sessions: an Opus stream has packet boundaries a byte pipe would lose,
// so each packet is written as a 2-byte big-endian length and the packet,
// and stdout must be framed the same way (cat passes it through).
//
// stderr: a line "caption: TEXT" publishes a final caption in the target
// language, "partial: TEXT" an interim one, "transcript: TEXT" and
// "transcript-partial: TEXT" the same in the source language; other lines
// are logged.
type Exec struct {
	Command string
	// Shell runs Command with -c; empty means sh.
	Shell string
	// Env adds variables to the command's environment.
	Env []string
	// MaxChunk bounds a published chunk; 0 means 32768.
	MaxChunk int
	// MaxLead bounds how far pcm16 output may run ahead of real time: a
	// command that writes faster (a text-to-speech engine producing a
	// sentence at once) is read at the real-time rate past that lead, so
	// listeners get a live stream rather than bursts, and the command is
	// held back by its full stdout pipe. 0 means 1 s; negative disables the
	// pacing. Opus output is not paced (packet durations are not parsed).
	MaxLead time.Duration
}

// defaultExecChunk is the read size before the first source chunk: 20 ms
// of pcm16.
const defaultExecChunk = 640

// killWait bounds how long Close waits for a killed command's pipes to close
// before it closes them itself.
const killWait = 5 * time.Second

// Start implements Translator.
func (x *Exec) Start(ctx context.Context, s Stream, out Output) (Worker, error) {
	if strings.TrimSpace(x.Command) == "" {
		return nil, errors.New("exec mode: no command")
	}
	shell := x.Shell
	if shell == "" {
		shell = "sh"
	}
	maxChunk := x.MaxChunk
	if maxChunk <= 0 {
		maxChunk = DefaultMaxChunk
	}
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, shell, "-c", x.Command)
	env := make([]string, 0, len(os.Environ())+len(x.Env)+5)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PENTECOST_TOKEN=") {
			env = append(env, kv)
		}
	}
	env = append(env, x.Env...)
	cmd.Env = append(env,
		"PENTECOST_SESSION_ID="+s.SessionID,
		"PENTECOST_LANGUAGE="+s.Language,
		"PENTECOST_SOURCE_LANGUAGE="+s.SourceLanguage,
		"PENTECOST_AUDIO_FORMAT="+s.Format,
		"PENTECOST_SAMPLE_RATE="+strconv.Itoa(SampleRate),
	)
	childproc.SetProcessGroup(cmd)
	cmd.WaitDelay = killWait
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s -c: %w", shell, err)
	}
	lead := x.MaxLead
	if lead == 0 {
		lead = time.Second
	}
	w := &execWorker{
		out:      out,
		lead:     lead,
		cancel:   cancel,
		ctx:      pctx,
		stdin:    stdin,
		pipes:    []io.Closer{stdout, stderr},
		opus:     s.Format == "opus",
		maxChunk: maxChunk,
		done:     make(chan struct{}),
	}
	w.chunk.Store(defaultExecChunk)
	out.Logf("command started (pid %d)", cmd.Process.Pid)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		if w.opus {
			w.readFramed(stdout)
		} else {
			w.readRaw(stdout)
		}
	}()
	go func() {
		defer readers.Done()
		w.readStderr(stderr)
	}()
	go func() {
		readers.Wait()
		w.err = cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

type execWorker struct {
	out      Output
	cancel   context.CancelFunc
	ctx      context.Context
	stdin    io.WriteCloser
	pipes    []io.Closer
	opus     bool
	maxChunk int
	lead     time.Duration // pacing of pcm16 output; negative: none
	chunk    atomic.Int64  // size of the last source chunk
	done     chan struct{}
	err      error // the command's exit; written before done is closed
	closed   sync.Once
	stopped  bool // the stream was stopped before Close: the exit is no failure
	frame    []byte
}

// Done is closed when the command has exited.
func (w *execWorker) Done() <-chan struct{} { return w.done }

func (w *execWorker) Process(c Chunk) error {
	if len(c.Data) == 0 {
		return nil
	}
	select {
	case <-w.done:
		return errExited
	default:
	}
	w.chunk.Store(int64(min(len(c.Data), w.maxChunk)))
	data := c.Data
	if w.opus {
		if len(c.Data) > 0xFFFF {
			return nil
		}
		w.frame = binary.BigEndian.AppendUint16(w.frame[:0], uint16(len(c.Data)))
		w.frame = append(w.frame, c.Data...)
		data = w.frame
	}
	if _, err := w.stdin.Write(data); err != nil {
		return fmt.Errorf("write to the command: %w", err)
	}
	return nil
}

// Close kills the command and waits for it.
func (w *execWorker) Close() error {
	w.closed.Do(func() {
		w.stopped = w.ctx.Err() != nil
		w.cancel()
		_ = w.stdin.Close()
		t := time.NewTimer(killWait)
		defer t.Stop()
		select {
		case <-w.done:
		case <-t.C:
			// Something still holds the pipes open: stop reading them.
			for _, p := range w.pipes {
				_ = p.Close()
			}
			<-w.done
		}
	})
	if w.stopped {
		return nil // killed on purpose
	}
	if w.err != nil {
		return fmt.Errorf("command exited: %w", w.err)
	}
	return errors.New("command exited")
}

// readRaw publishes pcm16 from r in whole samples, each read at most the
// source chunk size.
func (w *execWorker) readRaw(r io.Reader) {
	buf := make([]byte, w.maxChunk+1)
	carry := 0 // a byte of a split sample, kept at buf[0]
	var pace pacer
	for {
		limit := max(int(w.chunk.Load()), 2)
		n, err := r.Read(buf[carry:limit])
		total := carry + n
		even := total &^ 1
		if even > 0 {
			if w.lead >= 0 && !pace.wait(w.ctx, even, w.lead) {
				return
			}
			w.out.Audio(buf[:even])
		}
		carry = total - even
		if carry == 1 {
			buf[0] = buf[even]
		}
		if err != nil {
			return
		}
	}
}

// readFramed publishes length-prefixed packets from r.
func (w *execWorker) readFramed(r io.Reader) {
	br := bufio.NewReader(r)
	var hdr [2]byte
	buf := make([]byte, 0xFFFF)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		switch {
		case n == 0:
		case n > w.maxChunk:
			w.out.Logf("dropped a %d-byte packet from the command: over the %d-byte chunk limit", n, w.maxChunk)
		default:
			w.out.Audio(buf[:n])
		}
	}
}

// Caption prefixes of the command's stderr lines.
var stderrCaptions = []struct {
	prefix     string
	transcript bool
	final      bool
}{
	{"caption: ", false, true},
	{"partial: ", false, false},
	{"transcript: ", true, true},
	{"transcript-partial: ", true, false},
}

func (w *execWorker) readStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
lines:
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		for _, p := range stderrCaptions {
			if text, ok := strings.CutPrefix(line, p.prefix); ok {
				if p.transcript {
					w.out.Transcript(text, p.final)
				} else {
					w.out.Caption(text, p.final)
				}
				continue lines
			}
		}
		if strings.TrimSpace(line) != "" {
			w.out.Logf("stderr: %s", line)
		}
	}
	if sc.Err() != nil {
		w.out.Logf("stderr: %v; ignoring the rest", sc.Err())
	}
	_, _ = io.Copy(io.Discard, r)
}

// pacer holds pcm16 output to real time plus a lead. Time the output falls
// behind (the command was quiet) is not owed: after a pause it may again run
// at most lead ahead.
type pacer struct {
	start time.Time // when the output would have begun, had it been continuous
	sent  int64     // bytes published since start
}

// wait blocks until n more bytes may go out, and counts them; false when ctx
// ended first.
func (p *pacer) wait(ctx context.Context, n int, lead time.Duration) bool {
	now := time.Now()
	played := time.Duration(p.sent) * time.Second / BytesPerSecond
	if p.start.IsZero() || now.After(p.start.Add(played)) {
		p.start = now.Add(-played) // behind real time: rebase, owe nothing
	}
	if d := p.start.Add(played).Sub(now) - lead; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	p.sent += int64(n)
	return true
}
