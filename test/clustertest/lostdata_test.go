package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/pentecost/pentecost/client"
	"github.com/pentecost/pentecost/server"
)

// When Redis loses its data (FLUSHALL, or a restart without persistence)
// mid-session, the node holding the speaker writes the session back: a new
// listener joins on another node within half of --node-ttl and hears the
// speaker, whose own listeners never stopped hearing it.
func TestRedisLosesItsData(t *testing.T) {
	const nodeTTL = 2 * time.Second
	for _, tc := range []struct {
		name string
		lose func(r *redisProc)
	}{
		{"FLUSHALL", func(r *redisProc) {
			if err := r.client().FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"restart without persistence", func(r *redisProc) { r.restartEmpty() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRedis(t)
			c := privateCluster(t, r, func(cfg *server.Config) { cfg.NodeTTL = nodeTTL })
			bc := c.broadcast()
			a, b, id := bc.a, bc.b, bc.id
			onLocal, chunks := bc.onLocal, bc.chunks
			time.Sleep(500 * time.Millisecond)

			lostAt := time.Now()
			tc.lose(r)
			var joined *client.Conn
			var joinedAt time.Time
			deadline := lostAt.Add(nodeTTL + 3*time.Second)
			for joined == nil {
				if time.Now().After(deadline) {
					t.Fatalf("no listener could join on node B within %v of the loss", deadline.Sub(lostAt))
				}
				conn := dial(t, b, q("sessionId", id, "targetLanguage", "de"))
				ev, err := conn.Next(ctx(t))
				if err == nil && ev.Type == "sessionJoined" {
					joined, joinedAt = conn, time.Now()
					break
				}
				conn.CloseNow()
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("a new listener joined on the other node %v after the loss", joinedAt.Sub(lostAt).Round(time.Millisecond))
			// The bound is half of --node-ttl (the heartbeat, then the
			// re-assertion, each every quarter of it); a loaded machine
			// gets as much again and a second.
			if d := joinedAt.Sub(lostAt); d > nodeTTL+time.Second {
				t.Errorf("joined %v after the loss, want within --node-ttl/2 (%v), and at most %v on a loaded machine", d, nodeTTL/2, nodeTTL+time.Second)
			}
			nextAudio(t, joined)
			if code, v := getSession(t, b, id); code != 200 || v["speakerConnected"] != true || v["status"] != "active" {
				t.Fatalf("the session after the loss: %d %v", code, v)
			}

			// The speaker's own listeners never stopped hearing it.
			time.Sleep(200 * time.Millisecond)
			now := time.Now()
			sent := chunks.sentBetween(lostAt, now.Add(-100*time.Millisecond))
			got, silence := between(onLocal.arrivals(), lostAt, now)
			t.Logf("on the speaker's node: %d chunks received since the loss (%d sent up to 100 ms ago), longest silence %v",
				got, sent, silence.Round(time.Millisecond))
			if got < sent {
				t.Errorf("the same-node listener got %d of %d chunks", got, sent)
			}
			if n := metric(t, a, `pentecost_session_records_reasserted_total{what="recreated"}`); n != 1 {
				t.Errorf("node A counted %v re-created records", n)
			}
		})
	}
}
