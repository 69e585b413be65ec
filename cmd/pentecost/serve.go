package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/pentecost/pentecost/internal/lan"
	"github.com/pentecost/pentecost/internal/opus"
	"github.com/pentecost/pentecost/server"
)

func serveFlags(fs *flag.FlagSet, c *server.Config) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "embedded state: session records and the built-in signing key")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "cluster mode: state, limits and the cross-node bus in Redis")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", c.RedisPrefix, "prefix of every Redis key and channel (cluster mode)")
	fs.DurationVar(&c.NodeTTL, "node-ttl", c.NodeTTL, "cluster node heartbeat lifetime: a crashed node's listeners leave the counts within it")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate file (PEM); serves HTTPS/WSS with TLS 1.2 minimum")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key file (PEM)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", c.AllowedOrigins, "comma-separated browser Origin allow-list (* for any); empty = same origin only")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated CIDRs whose X-Forwarded-For is believed")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the URL users reach this server at: start-up links, the speaker page's QR code")
	fs.Var((*listFlag)(&c.ACMEDomains), "acme-domain", "serve HTTPS on --addr with certificates from an ACME CA for this domain (repeat or comma-separate for several)")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "ACME account contact email, for the CA's notices (never logged)")
	fs.StringVar(&c.ACMECA, "acme-ca", c.ACMECA, "ACME CA directory URL")
	fs.StringVar(&c.ACMECARoot, "acme-ca-root", c.ACMECARoot, "extra PEM root certificate to trust when talking to the ACME CA (private or test CAs)")
	fs.StringVar(&c.ACMEHTTPAddr, "acme-http-addr", c.ACMEHTTPAddr, "with --acme-domain: plain-HTTP listener for HTTP-01 challenges and redirects to HTTPS (empty: none)")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "verify speaker tokens against this JWKS (RS256/ES256)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required token issuer (exact match)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "required token audience (Cognito client_id counts)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", c.JWTSecret, "verify HS256 tokens with this shared secret")
	fs.BoolVar(&c.JWTAllowNoExp, "jwt-allow-no-exp", c.JWTAllowNoExp, "accept tokens without an exp claim (for issuers that never set one); by default a token must expire")
	fs.StringVar(&c.ProcessorRoleClaim, "processor-role-claim", c.ProcessorRoleClaim, "claim whose value processor marks a processor token")
	fs.DurationVar(&c.HeartbeatTimeout, "heartbeat-timeout", c.HeartbeatTimeout, "close a connection idle this long")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "server ping interval")
	fs.DurationVar(&c.ConnectionRefreshAfter, "connection-refresh-after", c.ConnectionRefreshAfter, "send connectionRefreshRequired after this (0 disables)")
	fs.DurationVar(&c.ConnectionWarningAfter, "connection-warning-after", c.ConnectionWarningAfter, "send connectionWarning after this (0 disables)")
	fs.DurationVar(&c.ConnectionMaxDuration, "connection-max-duration", c.ConnectionMaxDuration, "close a connection (4410) after this (0 disables)")
	fs.DurationVar(&c.SpeakerGrace, "speaker-grace", c.SpeakerGrace, "reconnect window after a speaker's unexpected drop")
	fs.DurationVar(&c.SessionStartTimeout, "session-start-timeout", c.SessionStartTimeout, "end a session its speaker never attached to after this")
	fs.DurationVar(&c.SessionMaxDuration, "session-max-duration", c.SessionMaxDuration, "end a session after this (0 = unlimited)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "on SIGTERM, how long clients get to move before the close")
	fs.IntVar(&c.MaxListenersPerSession, "max-listeners-per-session", c.MaxListenersPerSession, "listener cap per session")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "global WebSocket connection cap (503 past it)")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", c.MaxConnectionsPerIP, "open WebSocket connections per client IP (0 = no bound)")
	fs.IntVar(&c.RateSessionsPerHour, "rate-sessions-per-hour", c.RateSessionsPerHour, "sessions a user may create per hour")
	fs.Float64Var(&c.RateConnectsPerMinute, "rate-connects-per-minute", c.RateConnectsPerMinute, "WebSocket connection attempts per client IP per minute")
	fs.IntVar(&c.RateConnectsBurst, "rate-connects-burst", c.RateConnectsBurst, "burst of connection attempts per client IP")
	fs.Float64Var(&c.RateJoinsPerMinute, "rate-joins-per-minute", c.RateJoinsPerMinute, "listener joins per client IP per minute")
	fs.IntVar(&c.RateJoinsBurst, "rate-joins-burst", c.RateJoinsBurst, "burst of listener joins per client IP")
	fs.Float64Var(&c.RateHeartbeatsPerMinute, "rate-heartbeats-per-minute", c.RateHeartbeatsPerMinute, "heartbeats per connection per minute")
	fs.IntVar(&c.RateHeartbeatBurst, "rate-heartbeats-burst", c.RateHeartbeatBurst, "heartbeat burst per connection")
	fs.Float64Var(&c.RateControlPerSecond, "rate-control-per-second", c.RateControlPerSecond, "control messages per connection per second")
	fs.IntVar(&c.AudioMaxChunkBytes, "audio-max-chunk-bytes", c.AudioMaxChunkBytes, "largest audio chunk (inclusive)")
	fs.IntVar(&c.AudioMaxChunksPerSec, "audio-max-chunks-per-second", c.AudioMaxChunksPerSec, "audio chunks per second per speaker connection")
	fs.IntVar(&c.JSONMaxBytes, "json-max-bytes", c.JSONMaxBytes, "largest JSON message")
	fs.IntVar(&c.ListenerQueueChunks, "listener-queue-chunks", c.ListenerQueueChunks, "audio chunks queued per listener before the oldest is dropped")
	fs.DurationVar(&c.SlowListenerTimeout, "slow-listener-timeout", c.SlowListenerTimeout, "close a listener (4008) whose oldest queued message has waited this long (0 disables)")
	fs.IntVar(&c.SendBufferBytes, "send-buffer-bytes", c.SendBufferBytes, "kernel send buffer (SO_SNDBUF) per WebSocket, so a stall shows in the queue; 0 = kernel autotuning")
	fs.DurationVar(&c.WriteCoalesce, "write-coalesce", c.WriteCoalesce, "delay each socket write so more queued frames share it (fewer system calls, more latency); 0 = write at once")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "how long a socket that accepts nothing is kept past the slow-listener bound before it is cut without a close frame")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often expired sessions and dead speakers' nodes are looked for (at most 5s in cluster mode)")
	fs.IntVar(&c.PacketMs, "packet-ms", c.PacketMs, "packet duration (20, 40 or 60 ms) of sessions created without one: longer packets mean fewer socket writes per listener, shorter ones less delay")
	fs.DurationVar(&c.StatusInterval, "status-interval", c.StatusInterval, "periodic sessionStatus to the speaker")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
}

const serveAbout = `
Runs the broadcast server: the web apps (/ for listeners, /speak for the
speaker), WebSockets on /ws, the session API on /sessions, health on /healthz
and /readyz, Prometheus metrics on /metrics.

With neither --jwks-url nor --jwt-secret it is its own token issuer: it keeps
its signing key in --data-dir (issuer-key.pem, made on the first start) and
prints a speaker link at start-up; pentecost token mints more tokens there.
With --redis-url it joins a cluster of nodes sharing one Redis.

Every flag can also be set by the environment variable shown under it; a flag
given on the command line wins. docs/configuration.md explains each one.`

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "pentecost serve [flags]", serveAbout, everyFlag)
	serveFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Interfaces: lanInterfaces})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if h := srv.ACMEHTTPHandler(); h != nil {
		serveACMEHTTP(srv, cfg.ACMEHTTPAddr, log)
	}
	log.Info("pentecost listening", "addr", l.Addr().String(), "auth", srv.Auth.Mode(), "scheme", server.Scheme(cfg), "opus", opusStatus())
	if !opus.Available {
		log.Warn("built without Opus: each session's audio is relayed as its speaker sends it, and listeners who ask for the other codec get that one (no conversion between pcm16 and Opus); rebuild with libopus and -tags opus,nolibopusfile to convert")
	}
	b := banner{
		public: server.PublicBase(cfg, l.Addr()),
		scheme: server.Scheme(cfg),
		listen: l.Addr(),
	}
	if b.public == "" {
		ifs, err := lanInterfaces()
		if err != nil {
			log.Warn("cannot list network interfaces", "err", err)
		}
		b.lan = lan.URLs(b.scheme, l.Addr(), lan.Addresses(ifs))
		if len(b.lan) == 0 {
			log.Warn("phones cannot reach this server: no LAN address to listen on (see the start-up message)")
		}
	}
	if srv.Auth.Mode() == "builtin" {
		// The link goes to the terminal, never to the logs. The token is
		// in the fragment so it is not sent in HTTP requests either.
		if tok, err := srv.Auth.Mint("speaker", 12*time.Hour, false); err == nil {
			b.token = tok
		}
	}
	b.write(stdout)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// lanInterfaces lists the machine's interfaces; tests replace it.
var lanInterfaces lan.Source = lan.System

// serveACMEHTTP starts the plain-HTTP listener ACME wants (HTTP-01 answers,
// redirects to HTTPS). Failing to bind it is not fatal: TLS-ALPN-01 on
// --addr still gets certificates.
func serveACMEHTTP(srv *server.Server, addr string, log *slog.Logger) {
	if addr == "" {
		log.Info("acme: no HTTP listener (--acme-http-addr is empty): certificates through TLS-ALPN-01 on --addr only, no redirect to HTTPS")
		return
	}
	hl, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("acme: cannot listen for HTTP-01 challenges and redirects to HTTPS; certificates can still be obtained through TLS-ALPN-01 on --addr",
			"addr", addr, "err", err)
		return
	}
	log.Info("acme: HTTP-01 challenges and redirects to HTTPS", "addr", hl.Addr().String())
	go func() {
		if err := srv.ServeACMEHTTP(hl); err != nil {
			log.Warn("acme: HTTP listener stopped", "err", err)
		}
	}()
}

func displayAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "127.0.0.1"
	if !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// opusStatus says whether this binary converts between pcm16 and Opus.
func opusStatus() string {
	if opus.Available {
		return opus.Version()
	}
	return "unavailable"
}
