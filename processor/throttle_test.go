package processor

import (
	"testing"
	"time"
)

func TestThrottleForget(t *testing.T) {
	th := NewThrottle(time.Hour)
	if ok, _ := th.Allow("s1", "asr"); !ok {
		t.Fatal("first line held back")
	}
	if ok, _ := th.Allow("s1", "asr"); ok {
		t.Fatal("repeat within the interval let out")
	}
	th.Allow("", "mt/de")
	th.Forget("s1")
	if n := len(th.seen); n != 1 {
		t.Fatalf("%d kinds kept after Forget, want 1", n)
	}
	if ok, held := th.Allow("s1", "asr"); !ok || held != 0 {
		t.Fatalf("after Forget: ok=%v held=%d, want true 0", ok, held)
	}
}
