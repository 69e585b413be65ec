package client

import (
	"errors"
	"testing"

	"github.com/pentecost/pentecost/client/clienttest"
	"github.com/pentecost/pentecost/protocol"
)

func fakeServer(t *testing.T) *clienttest.Server {
	srv := clienttest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

func TestSpeakCreatesAndAttaches(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	c, ev, err := Speak(ctx, srv.URL, "tok-1", SpeakParams{SourceLanguage: "en", QualityTier: "premium"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != protocol.TypeSessionCreated || ev.String("sessionId") != "golden-eagle-427" || ev.String("qualityTier") != "premium" {
		t.Fatalf("answer %s", ev.Raw)
	}
	c.Close()

	c, ev, err = Speak(ctx, srv.URL, "tok-1", SpeakParams{SessionID: "golden-eagle-427"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ev.Type != protocol.TypeSessionJoined || ev.String("role") != "speaker" {
		t.Fatalf("attach answer %s", ev.Raw)
	}
	if got := srv.Tokens(); len(got) != 2 || got[0] != "tok-1" {
		t.Errorf("tokens %v", got)
	}
}

func TestSpeakRefused(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	_, _, err := Speak(ctx, srv.URL, "tok", SpeakParams{SessionID: "no-such-999"})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "SESSION_NOT_FOUND" || se.Status != 404 {
		t.Fatalf("attach to a missing session: %v", err)
	}
	_, _, err = Speak(ctx, srv.URL, "", SpeakParams{SourceLanguage: "en"})
	if !errors.As(err, &se) || se.Code != "UNAUTHORIZED" || se.Status != 401 {
		t.Fatalf("create without a token: %v", err)
	}
}

func TestListenBothEncodings(t *testing.T) {
	ctx := testCtx(t)
	srv := fakeServer(t)
	srv.CreateSession("holy-dove-123", "en")
	bin, ev, err := Listen(ctx, srv.URL, "holy-dove-123", "es", "")
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	if ev.Int("listenerCount") != 1 || ev.String("targetLanguage") != "es" {
		t.Errorf("joined %s", ev.Raw)
	}
	b64, _, err := Listen(ctx, srv.URL, "holy-dove-123", "fr", "base64")
	if err != nil {
		t.Fatal(err)
	}
	defer b64.Close()

	srv.Inject("holy-dove-123", []byte{1, 2, 3, 4})
	for _, c := range []*Conn{bin, b64} {
		var f *AudioFrame
		for f == nil {
			ev, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev.IsAudio() {
				if f, err = ev.AudioFromJSON(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if f.Header.Sequence != 0 || string(f.Chunk) != "\x01\x02\x03\x04" {
			t.Errorf("frame %+v", f)
		}
	}

	_, _, err = Listen(ctx, srv.URL, "holy-dove-123", "", "")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "MISSING_PARAMETER" || se.Details["field"] != "targetLanguage" {
		t.Fatalf("join without a language: %v", err)
	}
}
