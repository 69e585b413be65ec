package ctxtime

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, time.Millisecond) || !Sleep(ctx, 0) {
		t.Fatal("a sleep on a live context did not pass")
	}
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || Sleep(ctx, 0) {
		t.Fatal("a sleep on an ended context passed")
	}
	if time.Since(start) > time.Second {
		t.Fatal("a sleep on an ended context waited")
	}
}
