// Package server assembles a Pentecost node from its parts: the state store,
// the token verifier, the session rules, the WebSocket transport and the HTTP
// API. The command line and the tests both build nodes through it.
package server

import (
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/internal/autotls"
	"github.com/pentecost/pentecost/internal/ws"
	"github.com/pentecost/pentecost/sessions"
)

// Config is every knob of a node; the names follow docs/configuration.md.
type Config struct {
	Addr        string
	DataDir     string
	RedisURL    string
	RedisPrefix string
	// NodeTTL is how long a cluster node's heartbeat lives: a crashed
	// node's listeners leave every count within it.
	NodeTTL        time.Duration
	TLSCert        string
	TLSKey         string
	AllowedOrigins string
	TrustedProxies string
	PublicURL      string // how users reach the server: start-up links, GET /links

	// ACME: certificates from an ACME CA for these domains (internal/autotls).
	ACMEDomains  []string
	ACMEEmail    string // the account's contact; never logged
	ACMECA       string // the CA's directory URL
	ACMECARoot   string // extra PEM roots to trust when talking to the CA
	ACMEHTTPAddr string // HTTP-01 answers and redirects to HTTPS

	JWKSURL            string
	JWTIssuer          string
	JWTAudience        string
	JWTSecret          string
	JWTAllowNoExp      bool
	ProcessorRoleClaim string

	HeartbeatTimeout       time.Duration
	PingInterval           time.Duration
	ConnectionRefreshAfter time.Duration
	ConnectionWarningAfter time.Duration
	ConnectionMaxDuration  time.Duration
	SpeakerGrace           time.Duration
	SessionStartTimeout    time.Duration
	SessionMaxDuration     time.Duration
	ShutdownGrace          time.Duration

	MaxListenersPerSession int
	MaxConnections         int
	MaxConnectionsPerIP    int

	RateSessionsPerHour     int
	RateConnectsPerMinute   float64
	RateConnectsBurst       int
	RateJoinsPerMinute      float64
	RateJoinsBurst          int
	RateHeartbeatsPerMinute float64
	RateHeartbeatBurst      int
	RateControlPerSecond    float64

	AudioMaxChunkBytes   int
	AudioMaxChunksPerSec int
	JSONMaxBytes         int
	ListenerQueueChunks  int
	SlowListenerTimeout  time.Duration
	SendBufferBytes      int
	WriteTimeout         time.Duration
	WriteCoalesce        time.Duration
	StatusInterval       time.Duration
	RefreshOverlap       time.Duration
	SweepInterval        time.Duration

	LogLevel  string
	LogFormat string

	// Transcode converts between pcm16 and Opus for the clients that ask
	// (docs/protocol.md 7.4); it takes effect only in a build with Opus.
	// There is no flag: tests turn it off to see what a build without Opus
	// does.
	Transcode bool
	// PacketMs is the packet duration (20, 40 or 60 ms) of sessions
	// created without one.
	PacketMs int
}

// Defaults returns the documented defaults.
func Defaults() Config {
	sc := sessions.DefaultConfig()
	wc := ws.DefaultConfig()
	return Config{
		Addr:                    ":8080",
		DataDir:                 "./pentecost-data",
		RedisPrefix:             "pentecost:",
		NodeTTL:                 10 * time.Second,
		ACMECA:                  autotls.DefaultCA,
		ACMEHTTPAddr:            ":80",
		ProcessorRoleClaim:      "role",
		HeartbeatTimeout:        wc.HeartbeatTimeout,
		PingInterval:            wc.PingInterval,
		ConnectionRefreshAfter:  wc.RefreshAfter,
		ConnectionWarningAfter:  wc.WarningAfter,
		ConnectionMaxDuration:   wc.MaxDuration,
		SpeakerGrace:            sc.SpeakerGrace,
		SessionStartTimeout:     sc.StartTimeout,
		SessionMaxDuration:      sc.MaxDuration,
		ShutdownGrace:           10 * time.Second,
		MaxListenersPerSession:  sc.MaxListeners,
		MaxConnections:          wc.MaxConnections,
		MaxConnectionsPerIP:     wc.MaxConnectionsPerIP,
		RateSessionsPerHour:     sc.SessionsPerHour,
		RateConnectsPerMinute:   600,
		RateConnectsBurst:       200,
		RateJoinsPerMinute:      300,
		RateJoinsBurst:          100,
		RateHeartbeatsPerMinute: wc.HeartbeatsPerMinute,
		RateHeartbeatBurst:      wc.HeartbeatBurst,
		RateControlPerSecond:    wc.ControlPerSecond,
		AudioMaxChunkBytes:      wc.AudioMaxChunk,
		AudioMaxChunksPerSec:    wc.AudioMaxPerSecond,
		JSONMaxBytes:            wc.JSONMaxBytes,
		ListenerQueueChunks:     128,
		SlowListenerTimeout:     wc.Queue.StallTimeout,
		SendBufferBytes:         wc.SendBuffer,
		WriteTimeout:            wc.WriteTimeout,
		StatusInterval:          sc.StatusInterval,
		RefreshOverlap:          sc.RefreshOverlap,
		SweepInterval:           sc.SweepInterval,
		LogLevel:                "info",
		LogFormat:               "json",
		Transcode:               true,
		PacketMs:                pentecost.DefaultPacketMs,
	}
}
