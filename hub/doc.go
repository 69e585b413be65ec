// Package hub is the live fan-out: per session a Room of listeners grouped by
// language, and per connection a bounded Queue that a single writer drains.
//
// It knows nothing of JSON, HTTP or sockets. A chunk is stamped and framed
// once per (session, language, encoding) and the same immutable Message is
// queued to every listener of that stream; the broadcaster only enqueues and
// never waits for a socket.
package hub
