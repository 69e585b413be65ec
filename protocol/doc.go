// Package protocol is the wire codec of docs/protocol.md: the JSON messages both
// ways and the binary audio frame header. It has no state and knows nothing of
// sockets; the server, the command-line clients and the load tool share it.
package protocol
