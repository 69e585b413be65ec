package clustertest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// With Redis behind Sentinel (a master, a replica, a sentinel, all on
// loopback), killing the master costs the cross-node listeners the audio of
// the failover, and nothing else: sessions survive, the speaker's own
// listeners hear everything, audio resumes on both nodes by itself, and
// every chunk a listener on the other node missed is counted on that node
// (pentecost_bus_audio_missing_total) and on the speaker's
// (pentecost_bus_dropped_total), and logged.
func TestSentinelFailover(t *testing.T) {
	master := startRedis(t)
	replica := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	rc := replica.client()
	eventually(t, 10*time.Second, "the replica in sync", func() bool {
		info, _ := rc.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	sentinel := startSentinel(t, master)
	sc := sentinel.client()
	eventually(t, 15*time.Second, "the sentinel knows the replica", func() bool {
		reps, err := sc.Do(context.Background(), "SENTINEL", "REPLICAS", "mymaster").Slice()
		return err == nil && len(reps) == 1
	})

	c := privateCluster(t, master, nil)
	c.url = "redis+sentinel://" + sentinel.addr() + "/0?master_name=mymaster"
	bc := c.broadcast()
	a, b, sp, id := bc.a, bc.b, bc.speaker, bc.id
	onLocal, onRemote, chunks := bc.onLocal, bc.onRemote, bc.chunks
	time.Sleep(time.Second)

	killAt := time.Now()
	master.kill()
	// Audio resumes on the other node once the replica is promoted.
	var resumedAt time.Time
	eventually(t, 30*time.Second, "cross-node audio back after the failover", func() bool {
		as := onRemote.arrivals()
		for i := 1; i < len(as); i++ {
			if as[i].at.After(killAt) && as[i].seq != as[i-1].seq+1 {
				resumedAt = as[i].at // the first chunk after the gap
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	endAt := time.Now()
	bc.stop()
	t.Logf("cross-node audio back %v after the master was killed", resumedAt.Sub(killAt).Round(time.Millisecond))

	// The speaker's own listeners heard everything, in time.
	sent := chunks.sentBetween(killAt, endAt.Add(-100*time.Millisecond))
	lat := chunks.latencies(onLocal.arrivals(), 0, killAt, endAt.Add(-100*time.Millisecond))
	t.Logf("on the speaker's node during the failover: %d of %d chunks; latency p99 %v, max %v",
		len(lat), sent, pct(lat, .99).Round(time.Millisecond), pct(lat, 1).Round(time.Millisecond))
	if len(lat) < sent {
		t.Errorf("the same-node listener got %d of %d chunks", len(lat), sent)
	}
	bc.timely(t, "same-node listener during the failover", lat, killAt, endAt.Add(-100*time.Millisecond))

	// Every chunk the other node's listener missed is counted.
	as := onRemote.arrivals()
	missed := 0
	for i := 1; i < len(as); i++ {
		missed += int(as[i].seq - as[i-1].seq - 1)
	}
	countedB := metric(t, b, `pentecost_bus_audio_missing_total`)
	droppedA := metric(t, a, `pentecost_bus_dropped_total{kind="audio"}`)
	t.Logf("the remote listener missed %d chunks; node B counted %v missing, node A %v dropped", missed, countedB, droppedA)
	if missed == 0 || float64(missed) != countedB {
		t.Errorf("the remote listener missed %d chunks, node B counted %v", missed, countedB)
	}
	if droppedA < float64(missed) {
		t.Errorf("the remote listener missed %d chunks, node A counted %v dropped", missed, droppedA)
	}
	if !strings.Contains(a.Logs.String(), "cross-node bus unavailable") {
		t.Error("node A did not log \"cross-node bus unavailable\" for the failover")
	}
	from, to := resumedAt.Add(500*time.Millisecond), endAt.Add(-time.Second)
	if after, n := chunks.latencies(as, 0, from, to), chunks.sentBetween(from, to); len(after) < n {
		t.Errorf("after the failover the remote listener got %d of %d chunks", len(after), n)
	}

	// The session survived on both nodes, and a new listener joins.
	for name, n := range map[string]string{"A": a.URL, "B": b.URL} {
		body, err := httpGet(n + "/sessions/" + id)
		if err != nil || !strings.Contains(string(body), `"status":"active"`) || !strings.Contains(string(body), `"speakerConnected":true`) {
			t.Errorf("GET on %s after the failover: %s %v", name, body, err)
		}
	}
	late, _ := listener(t, b, id, "de")
	_ = sp.SendBinary(ctx(t), make([]byte, 640))
	nextAudio(t, late)
}
