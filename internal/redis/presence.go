package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/sessions"
)

// Presence is a sessions.Presence on Redis: it counts listeners per session across nodes. Each node writes its
// own hash fields ("node|lang" → count) and keeps a heartbeat key alive; a
// node that dies stops renewing it, and every count ignores (and removes)
// its fields once the key expires: no count is left behind by a crash.
type Presence struct {
	c    *Client
	node string
	ttl  time.Duration
	log  *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPresence returns the presence of node; its heartbeat key lives ttl
// (a crashed node's listeners leave the counts within ttl).
func NewPresence(c *Client, node string, ttl time.Duration, log *slog.Logger) *Presence {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Presence{c: c, node: node, ttl: ttl, log: log}
}

// Node is this node's ID.
func (p *Presence) Node() string { return p.node }

func (p *Presence) nodePrefix() string        { return p.c.key("node") + ":" }
func (p *Presence) hashKey(sid string) string { return p.c.key("presence", sid) }

// Start keeps the node's heartbeat alive, every quarter of its TTL, until
// Stop. It returns once the first beat is written.
func (p *Presence) Start(ctx context.Context) error {
	if err := p.beat(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan struct{})
	p.mu.Unlock()
	go p.loop(ctx)
	return nil
}

func (p *Presence) loop(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.beat(ctx); err != nil {
			p.log.Warn("presence heartbeat failed", "err", err)
		}
	}
}

func (p *Presence) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.ttl/4)
	defer cancel()
	return p.c.rdb.Set(ctx, p.nodePrefix()+p.node, time.Now().UnixMilli(), p.ttl).Err()
}

// Stop ends the heartbeat and removes the node's key, so its fields stop
// counting at once.
func (p *Presence) Stop(ctx context.Context) {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	p.c.rdb.Del(ctx, p.nodePrefix()+p.node)
}

// Alive reports whether node's heartbeat key exists.
func (p *Presence) Alive(ctx context.Context, node string) (bool, error) {
	n, err := p.c.rdb.Exists(ctx, p.nodePrefix()+node).Result()
	return n == 1, err
}

// The shared loop of the scripts: sum the fields of live nodes, drop the
// fields of dead ones.
const sumLive = `
local fields = redis.call('HGETALL', KEYS[1])
local total, byLang, alive = 0, {}, {}
for i = 1, #fields, 2 do
  local f, n = fields[i], tonumber(fields[i+1])
  local sep = string.find(f, '|', 1, true)
  local node, lang = string.sub(f, 1, sep - 1), string.sub(f, sep + 1)
  local a = alive[node]
  if a == nil then
    a = redis.call('EXISTS', ARGV[1] .. node) == 1
    alive[node] = a
  end
  if a and n > 0 then
    total = total + n
    byLang[lang] = (byLang[lang] or 0) + n
  else
    redis.call('HDEL', KEYS[1], f)
  end
end
`

// joinScript: ARGV = nodePrefix, field, lang, max, allowOver, ttlMillis.
var joinScript = goredis.NewScript(sumLive + `
local max = tonumber(ARGV[4])
if max > 0 and total >= max and ARGV[5] ~= '1' then return {-1, total} end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local newLang = 0
if (byLang[ARGV[3]] or 0) == 0 then newLang = 1 end
return {total + 1, newLang}
`)

// countScript: ARGV = nodePrefix. Returns {total, lang1, n1, lang2, n2...}.
var countScript = goredis.NewScript(sumLive + `
local out = {total}
for lang, n in pairs(byLang) do
  table.insert(out, lang)
  table.insert(out, n)
end
return out
`)

// leaveScript: ARGV = field.
var leaveScript = goredis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`)

// reconcileScript: ARGV = node, ttlMillis, lang1, n1, ... Replaces the
// node's fields with the given counts.
var reconcileScript = goredis.NewScript(`
local fields = redis.call('HKEYS', KEYS[1])
local prefix = ARGV[1] .. '|'
for _, f in ipairs(fields) do
  if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', KEYS[1], f) end
end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i+1]) > 0 then redis.call('HSET', KEYS[1], prefix .. ARGV[i], ARGV[i+1]) end
end
if redis.call('HLEN', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

// hashTTL bounds how long a presence hash outlives its last change.
const hashTTL = 48 * time.Hour

// Join counts one more listener of lang on this node unless the session
// already has max listeners across all live nodes (max <= 0: no cap;
// allowOver: a refresh may exceed it). It returns the total after the join,
// whether lang had no listener before, and full when refused.
func (p *Presence) Join(ctx context.Context, sid, lang string, max int, allowOver bool) (sessions.Admission, error) {
	over := "0"
	if allowOver {
		over = "1"
	}
	res, err := joinScript.Run(ctx, p.c.rdb, []string{p.hashKey(sid)},
		p.nodePrefix(), p.node+"|"+lang, lang, max, over, hashTTL.Milliseconds()).Int64Slice()
	if err != nil {
		return sessions.Admission{}, fmt.Errorf("redis: presence join %s: %w", sid, err)
	}
	if res[0] < 0 {
		return sessions.Admission{Total: int(res[1]), Full: true}, nil
	}
	return sessions.Admission{Total: int(res[0]), NewLang: res[1] == 1}, nil
}

// Leave counts one listener of lang on this node less.
func (p *Presence) Leave(ctx context.Context, sid, lang string) error {
	if err := leaveScript.Run(ctx, p.c.rdb, []string{p.hashKey(sid)}, p.node+"|"+lang).Err(); err != nil {
		return fmt.Errorf("redis: presence leave %s: %w", sid, err)
	}
	return nil
}

// Counts returns the listeners of a session across live nodes.
func (p *Presence) Counts(ctx context.Context, sid string) (int, map[string]int, error) {
	res, err := countScript.Run(ctx, p.c.rdb, []string{p.hashKey(sid)}, p.nodePrefix()).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("redis: presence counts %s: %w", sid, err)
	}
	total, _ := res[0].(int64)
	by := map[string]int{}
	for i := 1; i+1 < len(res); i += 2 {
		lang, _ := res[i].(string)
		n, _ := res[i+1].(int64)
		by[lang] = int(n)
	}
	return int(total), by, nil
}

// Reconcile replaces this node's counts of a session with byLang.
func (p *Presence) Reconcile(ctx context.Context, sid string, byLang map[string]int) error {
	args := []any{p.node, hashTTL.Milliseconds()}
	for lang, n := range byLang {
		if strings.Contains(lang, "|") {
			continue
		}
		args = append(args, lang, n)
	}
	if err := reconcileScript.Run(ctx, p.c.rdb, []string{p.hashKey(sid)}, args...).Err(); err != nil {
		return fmt.Errorf("redis: presence reconcile %s: %w", sid, err)
	}
	return nil
}
