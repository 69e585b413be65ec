package redis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
	goredis "github.com/redis/go-redis/v9"
)

// bucketScript is a token bucket shared by every node. Time comes from the
// caller (the node's clock) so tests drive it with a fake clock.
// KEYS[1] = bucket; ARGV = tokens per millisecond, burst, now (ms).
// Returns {allowed (0/1), wait (ms)}.
var bucketScript = goredis.NewScript(`
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 60000)
return {allowed, wait}
`)

// Limiter is a set of token buckets in Redis. When Redis cannot answer it
// allows the request and logs a warning: a limiter outage must not stop a
// congregation from joining.
type Limiter struct {
	c     *Client
	clock clockwork.Clock
	log   *slog.Logger
	name  string
	rate  float64 // tokens per millisecond
	burst int
}

// NewLimiter returns buckets named name refilling perMinute tokens a minute
// up to burst. perMinute <= 0 disables the limit.
func NewLimiter(c *Client, clock clockwork.Clock, log *slog.Logger, name string, perMinute float64, burst int) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{c: c, clock: clock, log: log, name: name, rate: perMinute / 60000, burst: burst}
}

// Allow takes a token for key (ws.IPLimiter).
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	ok, wait, err := l.take(context.Background(), key, l.rate, l.burst)
	if err != nil {
		l.log.Warn("rate limiter unavailable, allowing", "limit", l.name, "err", err)
		return true, 0
	}
	return ok, wait
}

func (l *Limiter) take(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	res, err := bucketScript.Run(ctx, l.c.rdb, []string{l.c.key("rl", l.name, key)},
		fmt.Sprintf("%.12f", rate), burst, l.clock.Now().UnixMilli()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redis: rate limit %s: %w", l.name, err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// Hourly limits a keyed action per hour across nodes (sessions.Limiter).
type Hourly struct{ l *Limiter }

// NewHourly returns the per-hour limiter.
func NewHourly(c *Client, clock clockwork.Clock, log *slog.Logger) *Hourly {
	return &Hourly{l: NewLimiter(c, clock, log, "hourly", 0, 1)}
}

// Allow takes one of perHour tokens for key. Its error is returned so the
// caller can fail open with its own log line.
func (h *Hourly) Allow(ctx context.Context, key string, perHour int) (bool, time.Duration, error) {
	return h.l.take(ctx, key, float64(perHour)/3_600_000, perHour)
}
