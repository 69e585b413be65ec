package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client/clienttest"
	"github.com/pentecost/pentecost/protocol"
)

func fastBackoff() *Backoff {
	return &Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
}

func startSpeaker(t *testing.T, ctx context.Context, srv *clienttest.Server) *Speaker {
	t.Helper()
	s, ev, err := StartSpeaker(ctx, SpeakerOptions{
		Base: srv.URL, Token: "tok", Params: SpeakParams{SourceLanguage: "en"},
		Backoff: fastBackoff(), Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != protocol.TypeSessionCreated || s.SessionID() != ev.String("sessionId") || s.SessionID() == "" {
		t.Fatalf("start: %s", ev.Raw)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func chunkN(i int) []byte { return fmt.Appendf(nil, "chunk-%06d", i) }

func TestSpeakerRefreshLosesAndRepeatsNothing(t *testing.T) {
	for _, overlap := range []time.Duration{time.Minute, 0} {
		t.Run(fmt.Sprint("overlap=", overlap), func(t *testing.T) { testSpeakerRefresh(t, overlap) })
	}
}

func testSpeakerRefresh(t *testing.T, overlap time.Duration) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	srv.RefreshOverlap = overlap
	s := startSpeaker(t, ctx, srv)
	id := s.SessionID()

	i := 0
	send := func() {
		if err := s.SendAudio(ctx, chunkN(i)); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 20 {
		send()
	}
	if srv.RequireRefresh(id, "speaker") != 1 {
		t.Fatal("no speaker to refresh")
	}
	// Keep streaming through the refresh until the old connection is gone.
	swapped := func() bool { return srv.Count("refresh-speaker") == 1 && srv.Speakers(id) == 1 }
	for !swapped() {
		send()
		if ctx.Err() != nil {
			t.Fatal("refresh never completed")
		}
	}
	for range 20 {
		send()
	}
	ev, err := s.End(ctx, "done")
	if err != nil || ev.String("reason") != "speakerEnded" {
		t.Fatalf("End: %s, %v", ev.Raw, err)
	}

	got := srv.Chunks(id)
	var names []string
	for _, c := range got {
		names = append(names, string(c))
	}
	// Across the swap two chunks may arrive in either order (two TCP
	// connections); none may be missing or doubled.
	sort.Strings(names)
	if len(names) != i {
		t.Fatalf("server got %d chunks, sent %d", len(names), i)
	}
	for k, n := range names {
		if n != string(chunkN(k)) {
			t.Fatalf("chunk %d is %q: lost or duplicated", k, n)
		}
	}
	if !errors.Is(s.SendAudio(ctx, []byte{1}), ErrSessionEnded) {
		t.Error("SendAudio after the end")
	}
	if _, ok := <-drain(s.Events()); ok {
		t.Error("Events not closed")
	}
}

// drain reads ch to its end and returns a closed channel.
func drain(ch <-chan Event) <-chan Event {
	for range ch {
	}
	c := make(chan Event)
	close(c)
	return c
}

func TestSpeakerReconnectsAfterDrop(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	s := startSpeaker(t, ctx, srv)
	id := s.SessionID()
	for i := range 5 {
		if err := s.SendAudio(ctx, chunkN(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.WaitFor(ctx, func() bool { return len(srv.Chunks(id)) == 5 }); err != nil {
		t.Fatal(err)
	}
	srv.Drop(id, "speaker")
	if err := srv.WaitFor(ctx, func() bool { return srv.Count("attach") == 1 && srv.Speakers(id) == 1 }); err != nil {
		t.Fatal("no reattach:", err)
	}
	for i := 5; i < 10; i++ {
		if err := s.SendAudio(ctx, chunkN(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.WaitFor(ctx, func() bool { return len(srv.Chunks(id)) == 10 }); err != nil {
		t.Fatalf("got %d chunks after the reconnect", len(srv.Chunks(id)))
	}
	// The reattach's sessionJoined reaches Events.
	for ev := range s.Events() {
		if ev.Type == protocol.TypeSessionJoined {
			return
		}
	}
	t.Error("no sessionJoined after reconnecting")
}

func TestSpeakerSendWaitsForReconnect(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	s := startSpeaker(t, ctx, srv)
	id := s.SessionID()
	srv.Drop(id, "speaker")
	// Whether the write fails or the drop is noticed first, the chunk
	// lands on the new connection.
	for i := 0; ; i++ {
		if err := s.SendAudio(ctx, chunkN(i)); err != nil {
			t.Fatal(err)
		}
		if srv.Count("attach") == 1 {
			break
		}
	}
	last := []byte("after")
	if err := s.SendAudio(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool {
		c := srv.Chunks(id)
		return len(c) > 0 && string(c[len(c)-1]) == "after"
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSpeakerStopsWhenSessionIsGone(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	s := startSpeaker(t, ctx, srv)
	id := s.SessionID()
	srv.End(id, "deleted")
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("never stopped")
	}
	if !errors.Is(s.Err(), ErrSessionEnded) {
		t.Errorf("Err %v", s.Err())
	}

	// A session that ended while the speaker was away: reattach is refused.
	s2 := startSpeaker(t, ctx, srv)
	srv.Drop(s2.SessionID(), "speaker")
	srv.End(s2.SessionID(), "expired")
	<-s2.Done()
	var se *ServerError
	if err := s2.Err(); !errors.Is(err, ErrSessionEnded) && !(errors.As(err, &se) && se.Code == "SESSION_NOT_FOUND") {
		t.Errorf("Err %v; want the refusal or the end", err)
	}
}

func TestSpeakerEventsAndHeartbeat(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	s, _, err := StartSpeaker(ctx, SpeakerOptions{
		Base: srv.URL, Token: "tok", Params: SpeakParams{SourceLanguage: "en"}, Heartbeat: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, _, err := Listen(ctx, srv.URL, s.SessionID(), "es", "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var status, acks bool
	for ev := range s.Events() {
		switch ev.Type {
		case protocol.TypeSessionStatus:
			status = ev.Int("listenerCount") == 1 && ev.Map("languageDistribution")["es"] == 1.0
		case protocol.TypeHeartbeatAck:
			acks = true
		}
		if status && acks {
			return
		}
	}
	t.Errorf("status %v, heartbeat acks %v", status, acks)
}
