package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pentecost/pentecost/protocol"
)

// Small pieces shared by Speaker and Listener (see resilient).

// sendHeartbeat sends one heartbeat on c, bounded by writeTimeout.
func sendHeartbeat(ctx context.Context, c *Conn) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_ = c.Send(ctx, map[string]any{"action": protocol.ActHeartbeat, "timestamp": time.Now().UnixMilli()})
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

func isFrameError(err error) bool {
	var fe *FrameError
	return errors.As(err, &fe)
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
