// Package inmem implements the parts a node shares with other nodes
// (sessions.Bus, sessions.Presence) in memory, for a single node: the same
// code paths as a cluster on Redis, with nothing to run. Several nodes in
// one process (the tests of package sessions) share one Bus and peers of one
// Presence. Its Store (pentecost.SessionStore) keeps records for tests; a
// node keeps them in bolt or Redis.
package inmem
