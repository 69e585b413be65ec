package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pentecost/pentecost/sessions"
)

type fakeLive struct{ st sessions.Stats }

func (f *fakeLive) Stats() sessions.Stats { return f.st }

type fakeQueues struct{ queued, conns int }

func (f *fakeQueues) QueuedMessages() int { return f.queued }
func (f *fakeQueues) Connections() int    { return f.conns }

// scrape returns the exposition's sample lines by name and labels.
func scrape(t *testing.T, m *Metrics) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	raw, _ := io.ReadAll(rec.Body)
	out := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

func TestObserverEventsBecomeMetrics(t *testing.T) {
	m := New(&fakeLive{}, &fakeQueues{})
	m.SessionCreated(3 * time.Millisecond)
	m.ListenerJoined(time.Millisecond)
	m.SessionEnded("speakerEnded")
	m.SessionEnded("speakerEnded")
	m.GraceOutcome("reconnected")
	m.AudioIn(5)
	m.AudioDropped(2)
	m.Refreshed("listener")
	m.RateLimited("join")
	m.Processors(3)
	m.ProcessingLag("es", 200*time.Millisecond)
	m.ConnectionOpened("listener")
	m.ConnectionOpened("listener")
	m.ConnectionClosed("listener")
	m.ErrorSent("SESSION_FULL")
	m.FramesWritten(4, 3)
	m.BusDropped("audio", 7)
	m.BusDropped("event", 1)
	m.BusAudioMissing(6)
	m.RecordReasserted("recreated")
	got := scrape(t, m)
	if got["pentecost_bus_up"] != "1" {
		t.Errorf("the bus starts up: %q", got["pentecost_bus_up"])
	}
	m.BusUp(false)
	if got := scrape(t, m); got["pentecost_bus_up"] != "0" {
		t.Errorf("bus down: %q", got["pentecost_bus_up"])
	}
	m.BusUp(true)
	for _, tc := range []struct{ sample, want string }{
		{"pentecost_session_create_duration_seconds_count", "1"},
		{"pentecost_listener_join_duration_seconds_count", "1"},
		{`pentecost_sessions_ended_total{reason="speakerEnded"}`, "2"},
		{`pentecost_speaker_grace_outcomes_total{outcome="reconnected"}`, "1"},
		{"pentecost_audio_chunks_received_total", "5"},
		{"pentecost_audio_frames_dropped_total", "2"},
		{`pentecost_connection_refreshes_total{role="listener"}`, "1"},
		{`pentecost_rate_limited_total{kind="join"}`, "1"},
		{"pentecost_processors", "3"},
		{`pentecost_processing_lag_seconds_sum{language="es"}`, "0.2"},
		{`pentecost_connections_joined{role="listener"}`, "1"},
		{`pentecost_errors_sent_total{code="SESSION_FULL"}`, "1"},
		{"pentecost_frames_delivered_total", "4"},
		{"pentecost_audio_frames_delivered_total", "3"},
		{"pentecost_write_batch_messages_count", "1"},
		{`pentecost_bus_dropped_total{kind="audio"}`, "7"},
		{`pentecost_bus_dropped_total{kind="event"}`, "1"},
		{"pentecost_bus_audio_missing_total", "6"},
		{`pentecost_session_records_reasserted_total{what="recreated"}`, "1"},
	} {
		if got[tc.sample] != tc.want {
			t.Errorf("%s = %q, want %s", tc.sample, got[tc.sample], tc.want)
		}
	}
	if got["go_goroutines"] == "" || got["process_open_fds"] == "" && got["process_cpu_seconds_total"] == "" {
		t.Error("the runtime and process collectors are missing")
	}
}

// The live gauges are read from the service and the transport at scrape
// time, so they cannot drift.
func TestLiveGaugesAreReadAtScrapeTime(t *testing.T) {
	live := &fakeLive{}
	queues := &fakeQueues{}
	m := New(live, queues)
	live.st = sessions.Stats{Sessions: 2, SpeakerConnections: 1, Listeners: 5, ListenersByLang: map[string]int{"es": 3, "fr": 2}}
	queues.queued, queues.conns = 7, 6
	m.LanguagePairs("a", 1, 2)
	m.LanguagePairs("b", 1, 0)
	got := scrape(t, m)
	for _, tc := range []struct{ sample, want string }{
		{"pentecost_sessions_active", "2"},
		{"pentecost_speaker_connections", "1"},
		{"pentecost_listener_connections", "5"},
		{`pentecost_listeners{language="es"}`, "3"},
		{`pentecost_listeners{language="fr"}`, "2"},
		{"pentecost_queued_messages", "7"},
		{"pentecost_websocket_connections", "6"},
		{`pentecost_language_pairs{served="true"}`, "2"},
		{`pentecost_language_pairs{served="false"}`, "2"},
	} {
		if got[tc.sample] != tc.want {
			t.Errorf("%s = %q, want %s", tc.sample, got[tc.sample], tc.want)
		}
	}
	// A session that ends stops counting its pairs.
	m.LanguagePairs("a", 0, 0)
	live.st = sessions.Stats{}
	got = scrape(t, m)
	if got[`pentecost_language_pairs{served="true"}`] != "1" || got[`pentecost_language_pairs{served="false"}`] != "0" ||
		got["pentecost_sessions_active"] != "0" || got[`pentecost_listeners{language="es"}`] != "" {
		t.Errorf("after the end: %v", got)
	}
}

func TestWithoutQueues(t *testing.T) {
	got := scrape(t, New(&fakeLive{}, nil))
	if _, ok := got["pentecost_queued_messages"]; ok {
		t.Error("queue gauges without a transport")
	}
}
