package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pentecost/pentecost/protocol"
)

// Timeouts that keep a dead peer from hanging a caller whose context has no
// deadline.
const (
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 10 * time.Second
	// closeWait bounds how long Close waits for the server's close frame.
	closeWait = time.Second
)

// DialOptions configure Dial.
type DialOptions struct {
	Header http.Header
	// Token is sent as "Authorization: Bearer". Speak and Refresh put it in
	// the query instead, as browsers must; the server accepts both.
	Token     string
	TLSConfig *tls.Config
}

// Conn is one WebSocket connection to the server.
//
// A goroutine started by Dial reads the connection, answering pings as it
// goes, and hands frames to Next; so a Next whose context ends leaves the
// connection intact. Writes are serialized, so Send and SendBinary may be
// called from several goroutines.
type Conn struct {
	ws *websocket.Conn

	wmu sync.Mutex // serializes data writes and their deadlines

	in       chan inbound  // closed by the reader when the connection ends
	readErr  error         // why it ended; written before in is closed
	readDone chan struct{} // closed after in

	done     chan struct{} // closed when this side closes
	doneOnce sync.Once
	close    sync.Once

	mu      sync.Mutex
	lastErr *ServerError
}

type inbound struct {
	ev  Event
	err error
}

// Dial opens a connection to a full ws:// or wss:// URL (see WSURL). A
// handshake the server refuses over plain HTTP is returned as *ServerError
// with the HTTP status.
func Dial(ctx context.Context, url string, opts DialOptions) (*Conn, error) {
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: handshakeTimeout,
		TLSClientConfig:  opts.TLSConfig,
	}
	h := opts.Header.Clone()
	if opts.Token != "" {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	ws, resp, err := d.DialContext(ctx, url, h)
	if err != nil {
		// Neither the URL nor the header goes in the error: both may hold
		// a token.
		if resp != nil {
			return nil, handshakeError(resp)
		}
		return nil, fmt.Errorf("websocket dial: %w", err)
	}
	c := &Conn{
		ws:       ws,
		in:       make(chan inbound, 16),
		readDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// handshakeError reads a refused upgrade: the HTTP error body of
// docs/protocol.md, "HTTP session API" when there is one.
func handshakeError(resp *http.Response) error {
	se := &ServerError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	if resp.Body != nil {
		var body struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &body) == nil {
			se.Code, se.Details = body.Code, body.Details
			if body.Message != "" {
				se.Message = body.Message
			}
		}
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		if se.Details == nil {
			se.Details = map[string]any{}
		}
		se.Details["retryAfter"] = float64(ra)
	}
	return se
}

func (c *Conn) read() {
	defer close(c.readDone)
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			c.readErr = c.readError(err)
			close(c.in)
			return
		}
		var in inbound
		if typ == websocket.BinaryMessage {
			in.ev, in.err = decodeBinary(b)
		} else {
			in.ev, in.err = decodeText(b)
		}
		if in.ev.Type == protocol.TypeError {
			c.mu.Lock()
			c.lastErr = serverErrorFrom(in.ev)
			c.mu.Unlock()
		}
		select {
		case c.in <- in:
		case <-c.done:
			// Nobody will read any more; keep draining until the close.
		}
	}
}

func (c *Conn) readError(err error) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	}
	return fmt.Errorf("websocket read: %w", err)
}

// Next returns the next frame from the server. When the connection ends it
// returns *CloseError (the server's close, or 1006 for a drop), ErrClosed
// after this side closed, or the network error; every later call returns the
// same. A frame it cannot decode gives a *FrameError with the event's Raw
// set; the connection stays usable. A context that ends returns its error
// and leaves the connection as it was.
func (c *Conn) Next(ctx context.Context) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	select {
	case in, ok := <-c.in:
		if !ok {
			return Event{}, c.readErr
		}
		return in.ev, in.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Expect reads until a JSON message of type typ arrives, skipping others.
// If the connection closes first with a 4xxx code after an `error` message,
// it returns that message as *ServerError (whose Close is the close);
// otherwise the error of Next.
func (c *Conn) Expect(ctx context.Context, typ string) (Event, error) {
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			return ev, c.explain(err)
		}
		if ev.Type == typ {
			return ev, nil
		}
	}
}

// explain turns a 4xxx close into the error message that announced it.
func (c *Conn) explain(err error) error {
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code < 4000 || ce.Code > 4999 {
		return err
	}
	se := c.LastError()
	if se == nil {
		return err
	}
	se.Close = ce
	return se
}

// LastError returns a copy of the last `error` message received, or nil.
func (c *Conn) LastError() *ServerError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr == nil {
		return nil
	}
	se := *c.lastErr
	return &se
}

// Send writes v as a JSON text message. A json.RawMessage is sent as is.
func (c *Conn) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return c.write(ctx, websocket.TextMessage, b)
}

// SendText writes b as a text message without checking it is JSON, for
// tests of the server's handling of malformed messages.
func (c *Conn) SendText(ctx context.Context, b []byte) error {
	return c.write(ctx, websocket.TextMessage, b)
}

// SendBinary writes b as one binary message: an audio chunk from a speaker,
// a translated frame from a processor.
func (c *Conn) SendBinary(ctx context.Context, b []byte) error {
	return c.write(ctx, websocket.BinaryMessage, b)
}

func (c *Conn) write(ctx context.Context, typ int, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	// gorilla cannot abandon a write half-way without corrupting the
	// stream, so cancellation is honoured through the deadline only.
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(deadline)
	if err := c.ws.WriteMessage(typ, b); err != nil {
		select {
		case <-c.done:
			return ErrClosed
		default:
		}
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

// Close sends a close frame with 1000, waits briefly for the server's
// answering close so the server sees a clean close, then closes the TCP
// connection. Later calls do nothing.
func (c *Conn) Close() error {
	var err error
	c.close.Do(func() {
		c.markDone()
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		werr := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
		if werr == nil {
			t := time.NewTimer(closeWait)
			select {
			case <-c.readDone:
			case <-t.C:
			}
			t.Stop()
		}
		cerr := c.ws.Close()
		select {
		case <-c.readDone:
			// The server had already gone or answered: nothing to report.
		default:
			if werr != nil && !errors.Is(werr, websocket.ErrCloseSent) {
				err = fmt.Errorf("websocket close: %w", werr)
			} else if cerr != nil {
				err = fmt.Errorf("websocket close: %w", cerr)
			}
		}
	})
	return err
}

// CloseNow drops the TCP connection without a close frame, as a network
// loss would. Tests use it; so does the Speaker for a connection whose
// write failed.
func (c *Conn) CloseNow() {
	c.markDone()
	_ = c.ws.Close()
}

func (c *Conn) markDone() { c.doneOnce.Do(func() { close(c.done) }) }

// Done is closed when the connection has ended, whichever side ended it.
func (c *Conn) Done() <-chan struct{} { return c.readDone }

// Underlying returns the gorilla connection, for inspection (addresses,
// the net.Conn for fault injection). Reading from it or changing its
// handlers races with the reading goroutine.
func (c *Conn) Underlying() *websocket.Conn { return c.ws }
