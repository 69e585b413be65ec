// Package metrics exposes a node's Prometheus metrics. It implements the
// observer interfaces of the session layer and the transport, and reads live
// gauges from them at scrape time so they cannot drift.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pentecost/pentecost/sessions"
)

const ns = "pentecost"

// Metrics holds every metric of a node.
type Metrics struct {
	reg *prometheus.Registry

	sessionCreate   prometheus.Histogram
	listenerJoin    prometheus.Histogram
	sessionsEnded   *prometheus.CounterVec
	graceOutcomes   *prometheus.CounterVec
	audioIn         prometheus.Counter
	framesDropped   prometheus.Counter
	refreshes       *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	connErrors      *prometheus.CounterVec
	framesDelivered prometheus.Counter
	audioDelivered  prometheus.Counter
	writeBatch      prometheus.Histogram
	slowConsumers   *prometheus.CounterVec
	connections     *prometheus.GaugeVec
	processors      prometheus.Gauge
	processingLag   *prometheus.HistogramVec
	transcoded      *prometheus.CounterVec
	busDropped      *prometheus.CounterVec
	busUp           prometheus.Gauge
	busMissing      prometheus.Counter
	reasserted      *prometheus.CounterVec

	pairsMu sync.Mutex
	pairs   map[string][2]int // session → served, unserved
}

// Live is what the metrics read at scrape time.
type Live interface {
	Stats() sessions.Stats
}

// Queues reports the messages waiting in every connection's queue.
type Queues interface {
	QueuedMessages() int
	Connections() int
}

// New registers every metric, the Go runtime and process collectors
// included.
func New(live Live, queues Queues) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		sessionCreate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "session_create_duration_seconds",
			Help:    "Time to create a session, from request to record stored.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		listenerJoin: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "listener_join_duration_seconds",
			Help:    "Time to admit a listener, from join request to membership.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sessions_ended_total", Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		graceOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "speaker_grace_outcomes_total",
			Help: "How speaker grace periods ended: reconnected or timeout.",
		}, []string{"outcome"}),
		audioIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "audio_chunks_received_total", Help: "Audio chunks accepted from speakers and fanned out.",
		}),
		framesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "audio_frames_dropped_total", Help: "Audio frames dropped because a listener could not keep up.",
		}),
		transcoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "codec_packets_total",
			Help: "Opus packets encoded or decoded for listeners and processors (once per stream, whatever the listener count), by op.",
		}, []string{"op"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "connection_refreshes_total", Help: "New-connection refreshes, by role.",
		}, []string{"role"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "rate_limited_total", Help: "Requests refused by a rate limit, by kind.",
		}, []string{"kind"}),
		connErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "errors_sent_total", Help: "Error messages sent to clients, by code.",
		}, []string{"code"}),
		framesDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "frames_delivered_total", Help: "WebSocket messages written to clients (audio and control).",
		}),
		audioDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "audio_frames_delivered_total", Help: "Audio frames written to listeners.",
		}),
		writeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "write_batch_messages",
			Help:    "Messages written per socket write; above 1 means coalescing is saving system calls.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		slowConsumers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "slow_consumers_total",
			Help: "Connections closed with 4008 because they stayed behind (listener too slow), by role.",
		}, []string{"role"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "connections_joined", Help: "Open connections that have joined a session, by role.",
		}, []string{"role"}),
		processors: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "processors", Help: "Attached translation processors.",
		}),
		processingLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "processing_lag_seconds",
			Help:    "Time from a source chunk's ingest to its translated chunk's arrival, by target language.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10},
		}, []string{"language"}),
		busDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "bus_dropped_total",
			Help: "Audio chunks and events this node could not send to the other nodes (the bus was down or behind), by kind.",
		}, []string{"kind"}),
		busUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "bus_up", Help: "1 while the cross-node bus carries this node's messages, 0 during an outage.",
		}),
		busMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "bus_audio_missing_total",
			Help: "Source audio chunks that never arrived from the speaker's node (gaps in their sequence numbers).",
		}),
		reasserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "session_records_reasserted_total",
			Help: "Session records this node wrote back into the shared state: lost records re-created, or the facts of a speaker on air here that another node took for gone.",
		}, []string{"what"}),
		pairs: map[string][2]int{},
	}
	m.busUp.Set(1)
	reg.MustRegister(m.sessionCreate, m.listenerJoin, m.sessionsEnded, m.graceOutcomes, m.audioIn,
		m.framesDropped, m.refreshes, m.rateLimited, m.connErrors, m.framesDelivered, m.audioDelivered,
		m.writeBatch, m.slowConsumers, m.connections, m.processors, m.processingLag,
		m.busDropped, m.busUp, m.busMissing, m.reasserted, m.transcoded)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&liveCollector{live: live, queues: queues, m: m})
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Session-layer observer.

func (m *Metrics) SessionCreated(d time.Duration) { m.sessionCreate.Observe(d.Seconds()) }
func (m *Metrics) ListenerJoined(d time.Duration) { m.listenerJoin.Observe(d.Seconds()) }
func (m *Metrics) SessionEnded(reason string)     { m.sessionsEnded.WithLabelValues(reason).Inc() }
func (m *Metrics) GraceOutcome(outcome string)    { m.graceOutcomes.WithLabelValues(outcome).Inc() }
func (m *Metrics) AudioIn(n int)                  { m.audioIn.Add(float64(n)) }
func (m *Metrics) AudioDropped(n int)             { m.framesDropped.Add(float64(n)) }
func (m *Metrics) Refreshed(role string)          { m.refreshes.WithLabelValues(role).Inc() }
func (m *Metrics) RateLimited(kind string)        { m.rateLimited.WithLabelValues(kind).Inc() }

func (m *Metrics) Processors(n int)            { m.processors.Set(float64(n)) }
func (m *Metrics) Transcoded(op string, n int) { m.transcoded.WithLabelValues(op).Add(float64(n)) }
func (m *Metrics) ProcessingLag(lang string, d time.Duration) {
	m.processingLag.WithLabelValues(lang).Observe(d.Seconds())
}

// BusDropped counts what this node could not send to the other nodes.
func (m *Metrics) BusDropped(kind string, n int) { m.busDropped.WithLabelValues(kind).Add(float64(n)) }

// BusUp records whether the cross-node bus carries.
func (m *Metrics) BusUp(up bool) {
	if up {
		m.busUp.Set(1)
	} else {
		m.busUp.Set(0)
	}
}

// BusAudioMissing counts source chunks that never arrived from the bus.
func (m *Metrics) BusAudioMissing(n int) { m.busMissing.Add(float64(n)) }

// RecordReasserted counts what this node wrote back into the shared state.
func (m *Metrics) RecordReasserted(what string) { m.reasserted.WithLabelValues(what).Inc() }

// LanguagePairs records how many (session, language) pairs with listeners a
// processor serves and how many hear the untranslated source.
func (m *Metrics) LanguagePairs(sessionID string, served, unserved int) {
	m.pairsMu.Lock()
	defer m.pairsMu.Unlock()
	if served == 0 && unserved == 0 {
		delete(m.pairs, sessionID)
		return
	}
	m.pairs[sessionID] = [2]int{served, unserved}
}

func (m *Metrics) pairTotals() (served, unserved int) {
	m.pairsMu.Lock()
	defer m.pairsMu.Unlock()
	for _, p := range m.pairs {
		served += p[0]
		unserved += p[1]
	}
	return served, unserved
}

// Transport observer.

func (m *Metrics) ConnectionOpened(role string) { m.connections.WithLabelValues(role).Inc() }
func (m *Metrics) ConnectionClosed(role string) { m.connections.WithLabelValues(role).Dec() }
func (m *Metrics) ErrorSent(code string)        { m.connErrors.WithLabelValues(code).Inc() }
func (m *Metrics) SlowConsumer(role string)     { m.slowConsumers.WithLabelValues(role).Inc() }
func (m *Metrics) FramesWritten(messages, audio int) {
	m.framesDelivered.Add(float64(messages))
	m.audioDelivered.Add(float64(audio))
	m.writeBatch.Observe(float64(messages))
}

// liveCollector reads the live gauges at scrape time.
type liveCollector struct {
	live   Live
	queues Queues
	m      *Metrics
}

var (
	descSessions  = prometheus.NewDesc(ns+"_sessions_active", "Live sessions on this node.", nil, nil)
	descSpeakers  = prometheus.NewDesc(ns+"_speaker_connections", "Speaker connections attached to a session.", nil, nil)
	descListeners = prometheus.NewDesc(ns+"_listeners", "Listeners connected, by target language.", []string{"language"}, nil)
	descListTotal = prometheus.NewDesc(ns+"_listener_connections", "Listeners connected, all languages.", nil, nil)
	descQueued    = prometheus.NewDesc(ns+"_queued_messages", "Messages waiting in connection write queues.", nil, nil)
	descConns     = prometheus.NewDesc(ns+"_websocket_connections", "Open WebSocket connections.", nil, nil)
	descPairs     = prometheus.NewDesc(ns+"_language_pairs", "(session, target language) pairs with listeners, by whether a processor serves them.", []string{"served"}, nil)
)

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descSpeakers, descListeners, descListTotal, descQueued, descConns, descPairs} {
		ch <- d
	}
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.live.Stats()
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(descSpeakers, prometheus.GaugeValue, float64(st.SpeakerConnections))
	ch <- prometheus.MustNewConstMetric(descListTotal, prometheus.GaugeValue, float64(st.Listeners))
	for lang, n := range st.ListenersByLang {
		ch <- prometheus.MustNewConstMetric(descListeners, prometheus.GaugeValue, float64(n), lang)
	}
	served, unserved := c.m.pairTotals()
	ch <- prometheus.MustNewConstMetric(descPairs, prometheus.GaugeValue, float64(served), "true")
	ch <- prometheus.MustNewConstMetric(descPairs, prometheus.GaugeValue, float64(unserved), "false")
	if c.queues != nil {
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(c.queues.QueuedMessages()))
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(c.queues.Connections()))
	}
}
