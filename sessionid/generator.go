package sessionid

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"strconv"

	"github.com/pentecost/pentecost"
)

// DefaultAttempts is how many taken IDs New tolerates (docs/protocol.md, "Session IDs").
const DefaultAttempts = 10

// maxDraws bounds the redraws after a blacklist hit. With the curated lists no
// draw is ever rejected, so reaching it means a broken Rand (one that keeps
// returning the same numbers), and an error beats spinning forever.
const maxDraws = 100

// Generator draws session IDs.
type Generator struct {
	// Rand returns a uniformly random int in [0, n). Nil means crypto/rand:
	// IDs are guessable handles to a live broadcast, so they should not be
	// predictable from earlier ones.
	Rand func(n int) int
	// Attempts is how many taken IDs New accepts before it gives up with
	// SESSION_ID_EXHAUSTED; zero or negative means DefaultAttempts.
	Attempts int
}

// New draws IDs and offers each to create until one is accepted. An error
// from create with code SESSION_ID_TAKEN means "draw again"; any other error
// is returned at once. After Attempts taken IDs, New returns an *Error with
// code SESSION_ID_EXHAUSTED.
func (g Generator) New(ctx context.Context, create func(ctx context.Context, id string) error) (string, error) {
	attempts := g.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var taken error
	for range attempts {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("sessionid: new: %w", err)
		}
		id, err := g.Generate()
		if err != nil {
			return "", err
		}
		err = create(ctx, id)
		if err == nil {
			return id, nil
		}
		if pentecost.ErrorCode(err) != pentecost.ErrSessionIDTaken {
			return "", fmt.Errorf("sessionid: create %s: %w", id, err)
		}
		taken = err
	}
	return "", (&pentecost.Error{
		Code:    pentecost.ErrSessionIDExhausted,
		Message: fmt.Sprintf("no free session ID after %d attempts; try again", attempts),
	}).With("attempts", attempts).Wrap(taken)
}

// Generate draws one ID that passes the blacklist, without checking whether
// it is in use.
func (g Generator) Generate() (string, error) {
	return g.generate(adjectives, nouns)
}

func (g Generator) generate(adjs, nns []string) (string, error) {
	for range maxDraws {
		adj, err := g.intn(len(adjs))
		if err != nil {
			return "", err
		}
		noun, err := g.intn(len(nns))
		if err != nil {
			return "", err
		}
		num, err := g.intn(900)
		if err != nil {
			return "", err
		}
		id := adjs[adj] + "-" + nns[noun] + "-" + strconv.Itoa(100+num)
		if !blocked(id) {
			return id, nil
		}
	}
	return "", fmt.Errorf("sessionid: every one of %d draws hit the blacklist; is Rand returning the same numbers?", maxDraws)
}

// intn calls Rand and checks its answer, since an out-of-range index from an
// injected Rand would otherwise panic deep inside the draw.
func (g Generator) intn(n int) (int, error) {
	if g.Rand == nil {
		return mrand.New(cryptoSource{}).IntN(n), nil
	}
	v := g.Rand(n)
	if v < 0 || v >= n {
		return 0, fmt.Errorf("sessionid: Rand(%d) returned %d, want a number in [0, %d)", n, v, n)
	}
	return v, nil
}

// cryptoSource feeds math/rand/v2 from crypto/rand, which gives its unbiased
// IntN over a secure source.
type cryptoSource struct{}

func (cryptoSource) Uint64() uint64 {
	var b [8]byte
	// crypto/rand.Read never returns an error (it aborts the program instead).
	_, _ = crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
