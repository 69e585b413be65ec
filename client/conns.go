package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pentecost/pentecost/protocol"
)

// Pieces shared by Speaker and Listener, which each run one goroutine that
// owns their connections and is fed by one reader goroutine per connection.

// feed passes c's frames to inbox until c ends or ctx does.
func feed(ctx context.Context, wg *sync.WaitGroup, c *Conn, inbox chan<- connMsg) {
	defer wg.Done()
	for {
		ev, err := c.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case inbox <- connMsg{c, ev, err}:
		case <-ctx.Done():
			return
		}
		var fe *FrameError
		if err != nil && !errors.As(err, &fe) {
			return
		}
	}
}

// heartbeat sends one heartbeat on c without holding up the caller.
func heartbeat(ctx context.Context, wg *sync.WaitGroup, c *Conn) {
	if c == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		_ = c.Send(ctx, map[string]any{"action": protocol.ActHeartbeat, "timestamp": time.Now().UnixMilli()})
	}()
}

// heartbeatTicker ticks every interval (0 means 30 s); a negative interval
// gives a nil channel, which never ticks.
func heartbeatTicker(interval time.Duration) (<-chan time.Time, func()) {
	if interval < 0 {
		return nil, func() {}
	}
	if interval == 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	return t.C, t.Stop
}

// final reports whether a lost connection should end the session rather
// than be reconnected. Unlike Retryable it gives a plain 1000 close and
// this side's CloseNow of a connection whose write failed another try:
// reattaching tells whether the session still exists.
func final(err error) bool {
	if errors.Is(err, ErrClosed) {
		return false
	}
	var ce *CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
		return false
	}
	return !Retryable(err)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// closeAll closes the connections concurrently and waits: each Close may
// wait up to a second for the server's close frame.
func closeAll(cs []*Conn) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
}
