// Package client speaks the Pentecost wire protocol (docs/protocol.md) over
// gorilla/websocket. It is used by the command-line speaker and listener, by
// the server's protocol tests as an implementation of the wire format that
// does not share the server's code (the audio header is decoded here, not
// with the protocol package's codec), and by the load tool.
//
// Layers, lowest first:
//
//   - Conn: one WebSocket with typed inbound events (Next, Expect) and
//     serialized writes (Send, SendBinary).
//   - Speak, Listen, Refresh: open a connection for one intent of
//     docs/protocol.md, "Connecting to /ws" and wait for the server's answer.
//   - Speaker, Listener: a session that outlives its connections: it
//     answers connectionRefreshRequired with a new connection and hands over
//     without losing or repeating audio, and reconnects with backoff after an
//     unexpected drop.
//   - GapTracker, Pacer, Backoff: the small pieces those are made of.
package client
