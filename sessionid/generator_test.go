package sessionid

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pentecost/pentecost"
)

// seq returns a Rand that replays vals and then repeats the last one.
func seq(vals ...int) func(int) int {
	i := 0
	return func(n int) int {
		v := vals[min(i, len(vals)-1)]
		i++
		return v % n
	}
}

var errTaken = pentecost.Errorf(pentecost.ErrSessionIDTaken, "taken")

func TestGenerateDefaultRand(t *testing.T) {
	var g Generator
	nums := map[string]bool{}
	for range 5000 {
		id, err := g.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !Valid(id) {
			t.Fatalf("Generate() = %q, not Valid", id)
		}
		parts := strings.Split(id, "-")
		if !slices.Contains(adjectives, parts[0]) || !slices.Contains(nouns, parts[1]) {
			t.Fatalf("Generate() = %q: words not from the lists", id)
		}
		nums[parts[2]] = true
	}
	// 5000 draws over 900 numbers leave about 3 unseen; far fewer than 870
	// distinct would mean a badly skewed source.
	if len(nums) < 870 {
		t.Errorf("only %d distinct numbers in 5000 draws", len(nums))
	}
}

func TestGenerateBounds(t *testing.T) {
	g := Generator{Rand: func(int) int { return 0 }}
	id, err := g.Generate()
	if err != nil || id != adjectives[0]+"-"+nouns[0]+"-100" {
		t.Errorf("lowest draw = %q, %v", id, err)
	}
	g = Generator{Rand: func(n int) int { return n - 1 }}
	id, err = g.Generate()
	if err != nil || id != adjectives[len(adjectives)-1]+"-"+nouns[len(nouns)-1]+"-999" {
		t.Errorf("highest draw = %q, %v", id, err)
	}
	for _, bad := range []int{-1, 1 << 30} {
		g = Generator{Rand: func(int) int { return bad }}
		if id, err := g.Generate(); err == nil {
			t.Errorf("Rand returning %d: Generate() = %q, want an error", bad, id)
		}
	}
}

func TestGenerateRedrawsBlocked(t *testing.T) {
	g := Generator{Rand: seq(0, 0, 27, 0, 1, 27)}
	id, err := g.generate([]string{"holy"}, []string{"shit", "dove"})
	if err != nil || id != "holy-dove-127" {
		t.Fatalf("generate = %q, %v; want the blocked draw replaced by holy-dove-127", id, err)
	}
	g = Generator{Rand: func(int) int { return 0 }}
	if id, err := g.generate([]string{"holy"}, []string{"shit"}); err == nil {
		t.Fatalf("only blocked words: generate = %q, want an error", id)
	}
}

func TestNewRetriesTaken(t *testing.T) {
	var offered []string
	g := Generator{Rand: seq(0, 0, 0, 1, 1, 1, 2, 2, 2)}
	id, err := g.New(context.Background(), func(_ context.Context, id string) error {
		offered = append(offered, id)
		if len(offered) < 3 {
			// Wrapped, as a store or a service layer might return it.
			return errors.Join(errors.New("store"), errTaken)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 3 || id != offered[2] {
		t.Fatalf("offered %v, got %q; want the third ID", offered, id)
	}
	if offered[0] == offered[1] || offered[1] == offered[2] {
		t.Errorf("offered the same ID twice: %v", offered)
	}
}

func TestNewExhausted(t *testing.T) {
	for _, tc := range []struct{ attempts, want int }{{0, DefaultAttempts}, {-3, DefaultAttempts}, {3, 3}} {
		calls := 0
		g := Generator{Attempts: tc.attempts}
		id, err := g.New(context.Background(), func(context.Context, string) error {
			calls++
			return errTaken
		})
		if calls != tc.want {
			t.Errorf("Attempts %d: %d calls, want %d", tc.attempts, calls, tc.want)
		}
		e := pentecost.AsError(err)
		if id != "" || e == nil || e.Code != pentecost.ErrSessionIDExhausted {
			t.Fatalf("Attempts %d: New = %q, %v; want SESSION_ID_EXHAUSTED", tc.attempts, id, err)
		}
		if e.Status() != 503 || e.Message == "" || e.Details["attempts"] != tc.want {
			t.Errorf("exhausted error = %+v", e)
		}
	}
}

func TestNewOtherErrorStops(t *testing.T) {
	boom := errors.New("disk on fire")
	calls := 0
	_, err := Generator{}.New(context.Background(), func(context.Context, string) error {
		calls++
		return boom
	})
	if calls != 1 || !errors.Is(err, boom) {
		t.Fatalf("calls = %d, err = %v; want one call and the error wrapped", calls, err)
	}
	unavailable := pentecost.Errorf(pentecost.ErrServiceUnavailable, "store down")
	_, err = Generator{}.New(context.Background(), func(context.Context, string) error { return unavailable })
	if pentecost.ErrorCode(err) != pentecost.ErrServiceUnavailable {
		t.Errorf("code = %s; a coded error must keep its code through the wrap", pentecost.ErrorCode(err))
	}
}

func TestNewContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	_, err := Generator{}.New(ctx, func(context.Context, string) error { calls++; return nil })
	if calls != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: calls = %d, err = %v", calls, err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls = 0
	_, err = Generator{}.New(ctx, func(context.Context, string) error {
		calls++
		cancel()
		return errTaken
	})
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during: calls = %d, err = %v; want no further attempt", calls, err)
	}
}
