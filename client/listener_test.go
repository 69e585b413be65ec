package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client/clienttest"
	"github.com/pentecost/pentecost/protocol"
)

func startListener(t *testing.T, ctx context.Context, srv *clienttest.Server, id, enc string) *Listener {
	t.Helper()
	l, ev, err := StartListener(ctx, ListenerOptions{
		Base: srv.URL, Params: ListenParams{SessionID: id, Language: "es", Encoding: enc},
		Backoff: fastBackoff(), Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != protocol.TypeSessionJoined {
		t.Fatalf("start: %s", ev.Raw)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readUntil reads l, feeding audio to g, until seq want has been seen as new;
// it returns the non-audio events.
func readUntil(t *testing.T, ctx context.Context, l *Listener, g *GapTracker, want uint32) (events []Event, gaps []Gap) {
	t.Helper()
	for {
		ev, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for seq %d: %v", want, err)
		}
		if !ev.IsAudio() {
			events = append(events, ev)
			continue
		}
		f, err := ev.AudioFromJSON()
		if err != nil {
			t.Fatal(err)
		}
		v, gap := g.Observe(f.Header.Sequence)
		if v == Late {
			t.Fatalf("seq %d came out of order", f.Header.Sequence)
		}
		if gap != nil {
			gaps = append(gaps, *gap)
		}
		if v == New && f.Header.Sequence == want {
			return events, gaps
		}
	}
}

func TestListenerRefreshHandover(t *testing.T) {
	for _, tc := range []struct {
		enc     string
		overlap time.Duration // the server closes the old connection after it
	}{
		{"binary", time.Minute}, {"base64", time.Minute}, {"binary", 0}, {"base64", 0},
	} {
		enc := tc.enc
		t.Run(fmt.Sprintf("%s/overlap=%v", enc, tc.overlap), func(t *testing.T) {
			ctx := testCtx(t)
			srv := fakeServer(t)
			srv.RefreshOverlap = tc.overlap
			srv.CreateSession("holy-dove-123", "en")
			l := startListener(t, ctx, srv, "holy-dove-123", enc)
			var g GapTracker
			for range 10 {
				srv.Inject("holy-dove-123", []byte{1, 2})
			}
			readUntil(t, ctx, l, &g, 9)

			srv.RequireRefresh("holy-dove-123", "listener")
			if err := srv.WaitFor(ctx, func() bool { return srv.Count("refresh-listener") == 1 }); err != nil {
				t.Fatal(err)
			}
			// Both connections are listening now: every chunk goes to both.
			for range 10 {
				srv.Inject("holy-dove-123", []byte{3, 4})
			}
			if _, gaps := readUntil(t, ctx, l, &g, 19); len(gaps) > 0 {
				t.Fatalf("gaps %v across the refresh", gaps)
			}
			if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 1 }); err != nil {
				t.Fatal("old connection never closed")
			}
			for range 10 {
				srv.Inject("holy-dove-123", []byte{5, 6})
			}
			readUntil(t, ctx, l, &g, 29)
			st := g.Stats()
			if st.Received != 30 || st.Gaps != 0 || st.Late != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestListenerReconnectsAndReportsGap(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	l := startListener(t, ctx, srv, "holy-dove-123", "")
	var g GapTracker
	srv.Inject("holy-dove-123", []byte{1, 2})
	readUntil(t, ctx, l, &g, 0)

	srv.Drop("holy-dove-123", "listener")
	if err := srv.WaitFor(ctx, func() bool { return srv.Count("join") == 2 && srv.Listeners("holy-dove-123") == 1 }); err != nil {
		t.Fatal("no rejoin:", err)
	}
	srv.SkipSeq("holy-dove-123", 3) // chunks fanned out while it was away
	srv.Inject("holy-dove-123", []byte{1, 2})
	events, gaps := readUntil(t, ctx, l, &g, 4)
	if len(gaps) != 1 || gaps[0] != (Gap{From: 1, To: 3}) {
		t.Errorf("gaps %v", gaps)
	}
	rejoined := false
	for _, ev := range events {
		rejoined = rejoined || ev.Type == protocol.TypeSessionJoined
	}
	if !rejoined {
		t.Error("no sessionJoined after the reconnect")
	}
}

func TestListenerSessionEnded(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	l := startListener(t, ctx, srv, "holy-dove-123", "")
	srv.End("holy-dove-123", "speakerEnded")
	for {
		ev, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("before sessionEnded: %v", err)
		}
		if ev.Type == protocol.TypeSessionEnded {
			break
		}
	}
	if _, err := l.Next(ctx); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("after sessionEnded: %v", err)
	}
}

func TestListenerClose(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	l := startListener(t, ctx, srv, "holy-dove-123", "")
	l.Close()
	if _, err := l.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Listeners("holy-dove-123") == 0 }); err != nil {
		t.Error("server still sees the listener")
	}
}
