package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
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

// Open connects to the Redis that url names and checks it answers. A Redis
// that is down at start is an error: a node must not join a cluster it
// cannot see.
//
//   - redis://[user:password@]host:port/db (rediss:// for TLS): one server.
//   - redis+sentinel://[user:password@]host:port/db?master_name=NAME
//     [&addr=host2:port2...][&password=...] (rediss+sentinel:// for TLS):
//     the master that Redis Sentinel names, followed through failovers.
//     The host:port and every addr are sentinels; the URL's user and
//     password are the sentinels' credentials, the username and password
//     parameters the master's (go-redis's ParseFailoverURL).
func Open(ctx context.Context, url, prefix string) (*Client, error) {
	rdb, where, err := newClient(url)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	c := &Client{rdb: rdb, prefix: prefix}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.rdb.Ping(pctx).Err(); err != nil {
		_ = c.rdb.Close()
		return nil, fmt.Errorf("redis: %s does not answer: %w", where, err)
	}
	return c, nil
}

// Short timeouts: a live audio server must fail fast and degrade, not queue
// requests behind an unreachable Redis; and every context's deadline is
// honoured.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = time.Second
	maxRetries  = 1
)

// newClient makes the client url names, and says where it points for
// errors (never the password).
func newClient(url string) (*goredis.Client, string, error) {
	if rest, ok := cutSentinelScheme(url); ok {
		opts, err := goredis.ParseFailoverURL(rest)
		if err != nil {
			return nil, "", fmt.Errorf("redis: parse sentinel url: %w", withoutURL(err))
		}
		if opts.MasterName == "" {
			return nil, "", errors.New("redis: a sentinel url needs master_name=NAME (the name the sentinels monitor)")
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		opts.MaxRetries, opts.ContextTimeoutEnabled = maxRetries, true
		where := fmt.Sprintf("master %q of the sentinels at %s", opts.MasterName, strings.Join(opts.SentinelAddrs, ","))
		return goredis.NewFailoverClient(opts), where, nil
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, "", fmt.Errorf("redis: parse url: %w", withoutURL(err))
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
	opts.MaxRetries, opts.ContextTimeoutEnabled = maxRetries, true
	return goredis.NewClient(opts), opts.Addr, nil
}

// withoutURL drops the URL (and the password in it) from a URL parse error.
func withoutURL(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// cutSentinelScheme turns redis+sentinel:// and rediss+sentinel:// into the
// redis:// and rediss:// go-redis's ParseFailoverURL reads.
func cutSentinelScheme(url string) (string, bool) {
	for _, scheme := range []string{"redis", "rediss"} {
		if rest, ok := strings.CutPrefix(url, scheme+"+sentinel://"); ok {
			return scheme + "://" + rest, true
		}
	}
	return url, false
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

// LogTo sends go-redis's own log lines (a failed dial, a sentinel's new
// master) to log at debug level: during an outage they come by the hundred,
// and the node says what matters itself, once. go-redis has one logger per
// process: the last call wins.
func LogTo(log *slog.Logger) { goredis.SetLogger(goredisLog{log}) }

type goredisLog struct{ log *slog.Logger }

func (l goredisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
