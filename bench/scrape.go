package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric names read from a server's /metrics. The baseline server exposes
// the same names, so one scraper serves both.
const (
	metricGoroutines = "go_goroutines"
	metricDropped    = "pentecost_audio_frames_dropped_total"
	metricRSS        = "process_resident_memory_bytes"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricWritten    = "pentecost_audio_frames_delivered_total"
	metricBatchSum   = "pentecost_write_batch_messages_sum"
	metricBatchCount = "pentecost_write_batch_messages_count"
	metricStackInuse = "go_memstats_stack_inuse_bytes"
)

// scrape fetches a Prometheus text exposition and sums every sample per
// metric name (labels ignored).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < 0 {
				continue
			}
			rest = strings.TrimSpace(line[j+1:])
		} else if !ok {
			continue
		}
		if sp := strings.IndexByte(rest, ' '); sp >= 0 { // a timestamp follows
			rest = rest[:sp]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
