package childproc

import (
	"fmt"
	"testing"
)

func TestTailKeepsTheLastBytes(t *testing.T) {
	tl := &Tail{Max: 8}
	for i := range 5 {
		fmt.Fprintf(tl, "line%d\n", i)
	}
	if got := tl.String(); got != "3\nline4\n" {
		t.Fatalf("tail %q, want the last 8 bytes", got)
	}
}
