// Package sessions holds the rules of a broadcast: creating sessions, who may
// attach, join, refresh and control them, the speaker's grace after a drop,
// expiry, listener caps and status pushes.
//
// It never imports the transport. A connection is seen through the small Conn
// interface; joining returns a handle (Speaker or Listener) through which the
// connection acts, so a role check is a matter of which handle a connection
// holds, and the audio path needs no lookup.
package sessions
