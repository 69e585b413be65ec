package sessions

import (
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
)

// Conn is a client connection as the session layer sees it. The transport
// implements it.
type Conn interface {
	// ID is the connection's opaque id, new for every connection.
	ID() string
	// Queue is the connection's outbound queue; messages pushed there are
	// written in order by the connection's writer.
	Queue() *hub.Queue
	// Close writes what is queued, then a close frame with code and reason,
	// and ends the connection. It never blocks.
	Close(code int, reason string)
}

// send queues one control message to c.
func send(c Conn, m protocol.Message) {
	c.Queue().Push(hub.NewControl(protocol.Marshal(m)))
}
