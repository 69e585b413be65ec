// Package redis implements the cluster mode's shared parts on Redis: the
// session store, listener presence counted per node, the cross-node event
// bus and the shared rate limiters. Every key and channel starts with the
// configured prefix, so several deployments (or tests) can share one Redis.
//
// The Lua scripts read keys they compute from the prefix (node heartbeats),
// which a standalone or Sentinel-managed Redis allows; Redis Cluster would
// need hash tags and is not supported.
package redis
