package storetest

import (
	"strings"
	"testing"
	"time"
)

func TestSampleSetsEveryField(t *testing.T) {
	if zero := zeroFields(Sample("golden-eagle-427")); len(zero) > 0 {
		t.Errorf("Sample leaves %v zero", zero)
	}
}

func TestDiff(t *testing.T) {
	a := Sample("golden-eagle-427")
	b := a.Clone()
	b.CreatedAt = b.CreatedAt.In(time.FixedZone("x", 3600)) // same instant
	if d := Diff(a, b); d != "" {
		t.Errorf("same instants in other zones differ: %s", d)
	}
	b.CreatedAt = b.CreatedAt.Add(time.Millisecond)
	b.Broadcast.Volume = 0.5
	d := Diff(a, b)
	if !strings.Contains(d, "CreatedAt") || !strings.Contains(d, "Broadcast.Volume") || strings.Contains(d, "OwnerID") {
		t.Errorf("Diff = %q; want CreatedAt and Broadcast.Volume only", d)
	}
	if Diff(nil, nil) != "" || Diff(a, nil) == "" {
		t.Error("Diff mishandles nil")
	}
}
