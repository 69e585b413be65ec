package clustertest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/internal/testserver"
	"github.com/pentecost/pentecost/server"
)

// TestMeasureRedisCost measures what one 500-listener session spread over
// three nodes costs Redis: CPU seconds and bytes in and out per second. It
// is a measurement, not a check, and runs only with PENTECOST_MEASURE=1:
//
//	PENTECOST_MEASURE=1 PENTECOST_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
//	  go test -run TestMeasureRedisCost -v -timeout 5m ./test/clustertest
func TestMeasureRedisCost(t *testing.T) {
	if os.Getenv("PENTECOST_MEASURE") == "" {
		t.Skip("a measurement: set PENTECOST_MEASURE=1 to run it")
	}
	c := newCluster(t, func(cfg *server.Config) {
		// One test client stands for 500 phones: lift the per-IP limits.
		cfg.RateJoinsBurst, cfg.RateConnectsBurst = 1000, 1000
	})
	nodes := []*testserver.Node{c.node(), c.node(), c.node()}
	sp, id := speaker(t, nodes[0], "alice")

	const listeners = 500
	var received atomic.Int64
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < listeners; i++ {
		n := nodes[i%3]
		li, err := client.Dial(ctx(t), n.WS(q("sessionId", id, "targetLanguage", []string{"es", "fr", "de", "pt"}[i%4])), client.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer li.CloseNow()
		if _, err := li.Expect(ctx(t), "sessionJoined"); err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := li.Next(bg)
				if err != nil {
					return
				}
				if ev.Audio != nil {
					received.Add(1)
				}
			}
		}()
	}
	opts, _ := goredis.ParseURL(c.url)
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	info := func() map[string]float64 {
		out := map[string]float64{}
		s, _ := rdb.Info(context.Background(), "cpu", "stats").Result()
		for _, line := range strings.Split(s, "\r\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = f
			}
		}
		return out
	}
	const seconds = 20
	before, start := info(), time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	sent := 0
	for time.Since(start) < seconds*time.Second {
		<-tick.C
		if err := sp.SendBinary(ctx(t), make([]byte, 640)); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	tick.Stop()
	elapsed := time.Since(start).Seconds()
	after := info()
	time.Sleep(200 * time.Millisecond)
	cancel()
	cpu := (after["used_cpu_sys"] + after["used_cpu_user"]) - (before["used_cpu_sys"] + before["used_cpu_user"])
	in := after["total_net_input_bytes"] - before["total_net_input_bytes"]
	outb := after["total_net_output_bytes"] - before["total_net_output_bytes"]
	cmds := after["total_commands_processed"] - before["total_commands_processed"]
	t.Logf("500 listeners on 3 nodes, 1 speaker at 50 chunks/s of 640 B, %.0f s:", elapsed)
	t.Logf("  chunks sent %d, frames delivered %d (%.1f%% of %d expected)", sent, received.Load(),
		100*float64(received.Load())/float64(sent*listeners), sent*listeners)
	t.Logf("  Redis CPU: %.3f s per s (%.1f%% of a core)", cpu/elapsed, 100*cpu/elapsed)
	t.Logf("  Redis network in: %.1f KB/s, out: %.1f KB/s", in/elapsed/1000, outb/elapsed/1000)
	t.Logf("  Redis commands: %.0f/s", cmds/elapsed)
}
