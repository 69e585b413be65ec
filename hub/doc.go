// Package hub is the live fan-out: per session a Room of listeners grouped by
// language, and per connection a bounded Queue with the writer that drains it.
//
// It knows nothing of JSON requests, HTTP or sockets. A chunk is stamped and
// framed as a WebSocket message once per (session, language, encoding), and
// the same immutable Message is queued to every listener of that stream; the
// broadcaster only enqueues and never waits for a socket. Each Queue's writer
// runs only while there is work and hands everything waiting to its Link (the
// transport's socket) in one call. The transport supplies only that: "write
// these frames".
package hub
