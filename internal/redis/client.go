package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces every key and channel.
const DefaultPrefix = "pentecost:"

// Client is a connection pool to Redis with the key prefix.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

// Open parses url (redis://[user:password@]host:port/db, or rediss:// for
// TLS) and checks Redis answers. A Redis that is down at start is an error:
// a node must not join a cluster it cannot see.
func Open(ctx context.Context, url, prefix string) (*Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	// Short timeouts: a live audio server must fail fast and degrade, not
	// queue requests behind an unreachable Redis.
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	opts.MaxRetries = 1
	if prefix == "" {
		prefix = DefaultPrefix
	}
	c := &Client{rdb: goredis.NewClient(opts), prefix: prefix}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.rdb.Ping(pctx).Err(); err != nil {
		_ = c.rdb.Close()
		return nil, fmt.Errorf("redis: %s does not answer: %w", opts.Addr, err)
	}
	return c, nil
}

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Ping reports whether Redis answers.
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

func (c *Client) key(parts ...string) string {
	k := c.prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// Redis returns the underlying client, for tests.
func (c *Client) Redis() *goredis.Client { return c.rdb }

// Prefix is the key prefix.
func (c *Client) Prefix() string { return c.prefix }
