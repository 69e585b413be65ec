package client

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pentecost/pentecost/protocol"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeWS runs handler for each WebSocket connection and returns the
// server's ws:// URL.
func fakeWS(t *testing.T, handler func(ws *websocket.Conn, r *http.Request)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handler(ws, r)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// echoServer greets with sessionCreated, returns binary chunks with a
// 16-byte header (sequence numbers from 7) and text frames as {"type":"echo"}.
func echoServer(ws *websocket.Conn, _ *http.Request) {
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"sessionCreated","timestamp":1700000000000,"sessionId":"golden-eagle-427","connectionId":"c1","expiresAt":1,"flag":true,"nested":{"a":1}}`))
	seq := uint32(7)
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.BinaryMessage {
			frame := make([]byte, 16)
			frame[0], frame[1] = 1, 1
			binary.BigEndian.PutUint16(frame[2:4], 9)
			binary.BigEndian.PutUint32(frame[4:8], seq)
			binary.BigEndian.PutUint64(frame[8:16], uint64(1700000000123456))
			seq++
			ws.WriteMessage(websocket.BinaryMessage, append(frame, b...))
			continue
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"echo","got":`+string(b)+`}`))
	}
}

func TestDialExpectSendEcho(t *testing.T) {
	ctx := testCtx(t)
	c, err := Dial(ctx, fakeWS(t, echoServer), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ev, err := c.Expect(ctx, protocol.TypeSessionCreated)
	if err != nil {
		t.Fatal(err)
	}
	if ev.String("sessionId") != "golden-eagle-427" || ev.Int("timestamp") != 1700000000000 || !ev.Bool("flag") || ev.Map("nested")["a"] != 1.0 {
		t.Errorf("helpers read %q %d %v %v", ev.String("sessionId"), ev.Int("timestamp"), ev.Bool("flag"), ev.Map("nested"))
	}
	var sc protocol.SessionCreated
	if err := ev.Decode(&sc); err != nil || sc.ConnectionID != "c1" {
		t.Errorf("Decode: %+v, %v", sc, err)
	}
	if ev.IsAudio() {
		t.Error("a JSON message reads as audio")
	}

	if err := c.SendBinary(ctx, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	ev, err = c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.IsAudio() || ev.Audio == nil {
		t.Fatalf("want an audio frame, got %+v", ev)
	}
	h := ev.Audio.Header
	if h.Version != 1 || h.Kind != 1 || h.StreamID != 9 || h.Sequence != 7 || h.Ingest.UnixMicro() != 1700000000123456 {
		t.Errorf("header %+v", h)
	}
	if string(ev.Audio.Chunk) != "\x01\x02\x03\x04" || len(ev.Raw) != 20 {
		t.Errorf("chunk % x, raw %d bytes", ev.Audio.Chunk, len(ev.Raw))
	}
	if f, err := ev.AudioFromJSON(); err != nil || f != ev.Audio {
		t.Errorf("AudioFromJSON on a binary frame: %v, %v", f, err)
	}

	if err := c.Send(ctx, map[string]any{"action": "heartbeat"}); err != nil {
		t.Fatal(err)
	}
	ev, err = c.Expect(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Map("got")["action"] != "heartbeat" {
		t.Errorf("echo %s", ev.Raw)
	}
}

func TestConcurrentSends(t *testing.T) {
	ctx := testCtx(t)
	c, err := Dial(ctx, fakeWS(t, echoServer), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50
	errs := make(chan error, 2*n)
	for range n {
		go func() { errs <- c.SendBinary(ctx, []byte{1, 2}) }()
		go func() { errs <- c.Send(ctx, map[string]any{"action": "x"}) }()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	audio, echo := 0, 0
	for audio+echo < 2*n+1 {
		ev, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.IsAudio() {
			audio++
		} else {
			echo++
		}
	}
	if audio != n || echo != n+1 {
		t.Errorf("%d audio, %d text; want %d and %d (interleaved writes corrupt frames)", audio, echo, n, n+1)
	}
}

func TestErrorThenCloseIsServerError(t *testing.T) {
	ctx := testCtx(t)
	u := fakeWS(t, func(ws *websocket.Conn, _ *http.Request) {
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","timestamp":1,"code":"SESSION_NOT_FOUND","status":404,"message":"no such session","details":{"sessionId":"x"}}`))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4404, "SESSION_NOT_FOUND"))
		ws.ReadMessage() // the client's answering close
	})

	c, err := Dial(ctx, u, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Next(ctx)
	if err != nil || ev.Type != protocol.TypeError {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	_, err = c.Next(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4404 || ce.Reason != "SESSION_NOT_FOUND" {
		t.Fatalf("Next after close: %v", err)
	}
	if _, again := c.Next(ctx); again != err {
		t.Errorf("a second Next returned %v, want the same %v", again, err)
	}
	c.Close()

	c, err = Dial(ctx, u, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Expect(ctx, protocol.TypeSessionJoined)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "SESSION_NOT_FOUND" || se.Status != 404 || se.Details["sessionId"] != "x" {
		t.Fatalf("Expect: %v", err)
	}
	if !errors.As(err, &ce) || ce.Code != 4404 {
		t.Errorf("the ServerError does not unwrap to the close: %v", se.Close)
	}
	if Retryable(err) {
		t.Error("a 404 refusal is retryable")
	}
}

func TestTokenHeaderAndHandshakeRefusal(t *testing.T) {
	ctx := testCtx(t)
	auth := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"busy","code":"SERVICE_UNAVAILABLE","message":"at capacity","timestamp":1}`))
	}))
	defer srv.Close()
	u, _ := WSURL(srv.URL, nil)
	_, err := Dial(ctx, u, DialOptions{Token: "secret-token"})
	if got := <-auth; got != "Bearer secret-token" {
		t.Errorf("Authorization %q", got)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Status != 503 || se.Code != "SERVICE_UNAVAILABLE" || se.Message != "at capacity" || se.Details["retryAfter"] != 7.0 {
		t.Fatalf("refusal: %#v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Error("the error shows the token")
	}
	if !Retryable(err) {
		t.Error("a 503 is not retryable")
	}
}

func TestNextContextLeavesConnUsable(t *testing.T) {
	ctx := testCtx(t)
	c, err := Dial(ctx, fakeWS(t, echoServer), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Expect(ctx, protocol.TypeSessionCreated); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Next(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
	expired, cancel2 := context.WithTimeout(ctx, time.Millisecond)
	defer cancel2()
	<-expired.Done()
	if _, err := c.Next(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next past its deadline: %v", err)
	}
	if err := c.Send(ctx, "still here"); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Expect(ctx, "echo"); err != nil || ev.String("got") != "still here" {
		t.Fatalf("after cancelled reads: %+v, %v", ev, err)
	}
}

func TestCloseAndCloseNowAsSeenByServer(t *testing.T) {
	ctx := testCtx(t)
	seen := make(chan error, 1)
	u := fakeWS(t, func(ws *websocket.Conn, _ *http.Request) {
		_, _, err := ws.ReadMessage()
		seen <- err
	})
	for _, tc := range []struct {
		name  string
		close func(*Conn)
		code  int
	}{
		{"Close", func(c *Conn) { c.Close() }, websocket.CloseNormalClosure},
		{"CloseNow", (*Conn).CloseNow, websocket.CloseAbnormalClosure},
	} {
		c, err := Dial(ctx, u, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tc.close(c)
		var ce *websocket.CloseError
		if err := <-seen; !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: server read %v, want close %d", tc.name, err, tc.code)
		}
		if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Next afterwards: %v", tc.name, err)
		}
		if err := c.SendBinary(ctx, []byte{1}); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: SendBinary afterwards: %v", tc.name, err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatalf("%s: Done never closed", tc.name)
		}
	}
}

func TestServerDropReads1006(t *testing.T) {
	ctx := testCtx(t)
	c, err := Dial(ctx, fakeWS(t, func(ws *websocket.Conn, _ *http.Request) {
		ws.NetConn().Close()
	}), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Next(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("drop read as %v", err)
	}
	if !Retryable(err) {
		t.Error("a drop is not retryable")
	}
}

func TestMalformedFramesAreNotFatal(t *testing.T) {
	ctx := testCtx(t)
	c, err := Dial(ctx, fakeWS(t, func(ws *websocket.Conn, _ *http.Request) {
		ws.WriteMessage(websocket.BinaryMessage, []byte{1, 0, 0})
		ws.WriteMessage(websocket.BinaryMessage, append([]byte{2}, make([]byte, 16)...))
		ws.WriteMessage(websocket.BinaryMessage, append([]byte{1, 5}, make([]byte, 16)...))
		ws.WriteMessage(websocket.TextMessage, []byte(`not json`))
		ws.WriteMessage(websocket.TextMessage, []byte(`{"no":"type"}`))
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"heartbeatAck","timestamp":5}`))
		ws.ReadMessage()
	}), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 5 {
		ev, err := c.Next(ctx)
		var fe *FrameError
		if !errors.As(err, &fe) || len(ev.Raw) == 0 {
			t.Fatalf("frame %d: %+v, %v; want a FrameError with Raw", i, ev, err)
		}
	}
	if ev, err := c.Next(ctx); err != nil || ev.Type != protocol.TypeHeartbeatAck {
		t.Fatalf("after malformed frames: %+v, %v", ev, err)
	}
}

func TestAudioFromJSON(t *testing.T) {
	ev, err := decodeText([]byte(`{"type":"audioData","timestamp":1700000000123,"sessionId":"s","targetLanguage":"es","sequenceNumber":4294967295,"kind":1,"audioData":"` +
		base64.StdEncoding.EncodeToString([]byte{9, 8, 7}) + `","format":"pcm16"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.IsAudio() {
		t.Error("audioData is not audio")
	}
	f, err := ev.AudioFromJSON()
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Sequence != 4294967295 || f.Header.Kind != 1 || f.Header.Version != 1 || f.Header.Ingest.UnixMilli() != 1700000000123 || string(f.Chunk) != "\x09\x08\x07" {
		t.Errorf("frame %+v", f)
	}
	bad, _ := decodeText([]byte(`{"type":"audioData","audioData":"!!"}`))
	if _, err := bad.AudioFromJSON(); err == nil {
		t.Error("bad base64 decoded")
	}
	other, _ := decodeText([]byte(`{"type":"caption"}`))
	if _, err := other.AudioFromJSON(); err == nil {
		t.Error("a caption decoded as audio")
	}
}

func TestWSURL(t *testing.T) {
	q := url.Values{"sessionId": {"golden-eagle-427"}, "targetLanguage": {"es"}}
	for _, c := range []struct{ base, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"https://example.org", "wss://example.org/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"ws://h:1/", "ws://h:1/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"wss://h/ws", "wss://h/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"https://h/pentecost/", "wss://h/pentecost/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"localhost:8080", "ws://localhost:8080/ws?sessionId=golden-eagle-427&targetLanguage=es"},
		{"http://h?targetLanguage=fr&x=1", "ws://h/ws?sessionId=golden-eagle-427&targetLanguage=es&x=1"},
	} {
		got, err := WSURL(c.base, q)
		if err != nil || got != c.want {
			t.Errorf("WSURL(%q) = %q, %v; want %q", c.base, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://h", "http://", "http://[::1"} {
		if _, err := WSURL(bad, q); err == nil {
			t.Errorf("WSURL(%q) accepted", bad)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("dial tcp: connection refused"), true},
		{&CloseError{Code: 1006}, true},
		{&CloseError{Code: 1012}, true},
		{&CloseError{Code: 4008}, true},
		{&CloseError{Code: 4429}, true},
		{&CloseError{Code: 1000}, false},
		{&CloseError{Code: 4401}, false},
		{&ServerError{Code: "RATE_LIMIT_EXCEEDED", Status: 429, Close: &CloseError{Code: 4429}}, true},
		{&ServerError{Code: "FORBIDDEN", Status: 403}, false},
		{context.Canceled, false},
		{ErrClosed, false},
		{&FrameError{Err: errShortFrame}, false},
	} {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
