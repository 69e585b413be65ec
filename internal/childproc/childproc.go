// Package childproc holds what the processor's child programs share: a
// process group per command, so that a shell pipeline dies whole, and a
// bounded tail of what a child said on stderr, for the error when it fails.
package childproc

import "sync"

// Tail keeps the last Max bytes written to it.
type Tail struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.Max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
