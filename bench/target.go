package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pentecost/pentecost/auth"
	"github.com/pentecost/pentecost/bench/internal/baseline"
	"github.com/pentecost/pentecost/internal/childproc"
	"github.com/pentecost/pentecost/server"
)

// Kinds of server a run measures.
const (
	KindPentecost = "pentecost"
	KindBaseline  = "baseline"
)

// Modes of running a server.
const (
	ModeChild     = "child"
	ModeInProcess = "in-process"
	ModeExternal  = "external"
)

// target is a server under test.
type target struct {
	kind       string
	mode       string
	wsURL      string // ws://host:port/ws
	metricsURL string
	pid        int    // 0: CPU and memory unknown
	token      string // speaker token ("" for the baseline)
	stop       func() error

	cmd        *exec.Cmd // child mode
	profileDir string
}

// childAddrPrefix is the line a server child prints once it listens.
const childAddrPrefix = "BENCH-SERVER-ADDR "

// ProfileDirEnv names the environment variable that enables profiling in a
// server child: SIGUSR1 starts a CPU profile, SIGUSR2 stops it and writes a
// heap profile, both into that directory.
const ProfileDirEnv = "PENTECOST_BENCH_PROFILE_DIR"

// speakerURL creates a session whose speaker sends codec (in packets of
// packetMs, when not 0).
func (t *target) speakerURL(codec string, packetMs int) string {
	q := url.Values{"action": {"createSession"}, "sourceLanguage": {languages[0]}, "audioFormat": {codec}}
	if packetMs != 0 {
		q.Set("packetMs", strconv.Itoa(packetMs))
	}
	if t.token != "" {
		q.Set("token", t.token)
	}
	return t.wsURL + "?" + q.Encode()
}

func (t *target) listenerURL(sessionID, lang, codec string) string {
	q := url.Values{"sessionId": {sessionID}, "targetLanguage": {lang}, "codec": {codec}}
	return t.wsURL + "?" + q.Encode()
}

// startTarget starts (or, for an external URL, finds) the server of kind.
func startTarget(ctx context.Context, cfg Config, kind string) (*target, error) {
	switch {
	case kind == KindPentecost && cfg.URL != "":
		return externalTarget(cfg)
	case cfg.InProcess:
		return inProcessTarget(ctx, cfg, kind)
	default:
		return childTarget(ctx, cfg, kind)
	}
}

func externalTarget(cfg Config) (*target, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	m := url.URL{Scheme: "http", Host: u.Host, Path: "/metrics"}
	return &target{
		kind: KindPentecost, mode: ModeExternal, wsURL: cfg.URL, metricsURL: m.String(),
		pid: cfg.ServerPID, token: cfg.Token, stop: func() error { return nil },
	}, nil
}

// benchServerFlags are the serve flags of a bench run: every limit that
// would refuse the load is lifted, every timer that could fire mid-run is
// off, and the audio rate limit sits above the offered rate.
func benchServerFlags(cfg Config, dataDir, secret string) []string {
	rate := int(cfg.Rate()*2) + 1
	if rate < 100 {
		rate = 100
	}
	return []string{
		"--addr", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--jwt-secret", secret,
		"--log-level", "warn", "--log-format", "text",
		"--heartbeat-timeout", "0", "--ping-interval", "0",
		"--connection-refresh-after", "0", "--connection-warning-after", "0", "--connection-max-duration", "0",
		"--max-listeners-per-session", "0",
		"--max-connections", "1000000", "--max-connections-per-ip", "0",
		"--rate-sessions-per-hour", "1000000",
		"--rate-connects-per-minute", "0", "--rate-joins-per-minute", "0",
		"--audio-max-chunks-per-second", strconv.Itoa(rate),
		"--shutdown-grace", "100ms",
	}
}

// benchServerConfig is benchServerFlags for an in-process server.
func benchServerConfig(cfg Config, dataDir, secret string) server.Config {
	c := server.Defaults()
	c.Addr = "127.0.0.1:0"
	c.DataDir = dataDir
	c.JWTSecret = secret
	c.HeartbeatTimeout, c.PingInterval = 0, 0
	c.ConnectionRefreshAfter, c.ConnectionWarningAfter, c.ConnectionMaxDuration = 0, 0, 0
	c.MaxListenersPerSession = 0
	c.MaxConnections, c.MaxConnectionsPerIP = 1000000, 0
	c.RateSessionsPerHour = 1000000
	c.RateConnectsPerMinute, c.RateJoinsPerMinute = 0, 0
	c.AudioMaxChunksPerSec = max(100, int(cfg.Rate()*2)+1)
	c.ShutdownGrace = 100 * time.Millisecond
	c.SweepInterval = 0
	return c
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mintToken mints an HS256 speaker token for a server verifying secret.
func mintToken(ctx context.Context, secret string) (string, error) {
	a, err := auth.New(ctx, auth.Config{Secret: secret})
	if err != nil {
		return "", err
	}
	return a.Mint("bench-speaker", 2*time.Hour, false)
}

func inProcessTarget(ctx context.Context, cfg Config, kind string) (*target, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	t := &target{kind: kind, mode: ModeInProcess, wsURL: "ws://" + addr + "/ws", metricsURL: "http://" + addr + "/metrics"}
	if kind == KindBaseline {
		b := baseline.New(baseline.Options{})
		go func() { _ = b.Serve(l) }()
		t.stop = b.Close
		return t, nil
	}
	dir, err := os.MkdirTemp("", "pentecost-bench-")
	if err != nil {
		l.Close()
		return nil, err
	}
	secret := newSecret()
	srv, err := server.New(ctx, benchServerConfig(cfg, dir, secret), server.Options{})
	if err != nil {
		l.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = srv.Serve(l) }()
	t.token, err = srv.Auth.Mint("bench-speaker", 2*time.Hour, false)
	t.stop = func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		os.RemoveAll(dir)
		return err
	}
	if err != nil {
		_ = t.stop()
		return nil, err
	}
	return t, nil
}

func childTarget(ctx context.Context, cfg Config, kind string) (*target, error) {
	args := append([]string(nil), cfg.ChildCommand[1:]...)
	args = append(args, kind)
	var dir, secret string
	if kind == KindPentecost {
		var err error
		dir, err = os.MkdirTemp("", "pentecost-bench-")
		if err != nil {
			return nil, err
		}
		secret = newSecret()
		args = append(args, benchServerFlags(cfg, dir, secret)...)
		args = append(args, cfg.ServerArgs...)
	} else {
		args = append(args, "--addr", "127.0.0.1:0")
	}
	cmd := exec.Command(cfg.ChildCommand[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = os.Environ()
	t := &target{kind: kind, mode: ModeChild, cmd: cmd}
	if cfg.ProfileDir != "" {
		pd, err := filepath.Abs(cfg.ProfileDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(pd, 0o755); err != nil {
			return nil, err
		}
		t.profileDir = pd
		cmd.Env = append(cmd.Env, ProfileDirEnv+"="+pd, "PENTECOST_BENCH_PROFILE_NAME="+kind)
	}
	stderr := &childproc.Tail{Max: 8192}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cleanup := func() {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, fmt.Errorf("start %s server: %w", kind, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		cleanup()
		return nil
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), childAddrPrefix); ok {
				addrc <- strings.TrimSpace(a)
			}
		}
	}()
	select {
	case addr := <-addrc:
		t.pid = cmd.Process.Pid
		t.wsURL = "ws://" + addr + "/ws"
		t.metricsURL = "http://" + addr + "/metrics"
	case <-exited:
		cleanup()
		return nil, fmt.Errorf("%s server exited at start (%v): %s", kind, waitErr, strings.TrimSpace(stderr.String()))
	case <-time.After(30 * time.Second):
		_ = t.stop()
		return nil, fmt.Errorf("%s server did not report its address within 30s: %s", kind, strings.TrimSpace(stderr.String()))
	case <-ctx.Done():
		_ = t.stop()
		return nil, ctx.Err()
	}
	if kind == KindPentecost {
		tok, err := mintToken(ctx, secret)
		if err != nil {
			_ = t.stop()
			return nil, err
		}
		t.token = tok
	}
	return t, nil
}

// profile signals a profiling child: start (SIGUSR1) or stop (SIGUSR2).
func (t *target) profile(start bool) {
	if t.cmd == nil || t.profileDir == "" {
		return
	}
	sig := syscall.SIGUSR2
	if start {
		sig = syscall.SIGUSR1
	}
	_ = t.cmd.Process.Signal(sig)
}

// usage is a point-in-time reading of the server and the machine.
type usage struct {
	at         time.Time
	serverCPU  time.Duration
	serverOK   bool
	selfCPU    time.Duration
	machBusy   time.Duration
	machSoft   time.Duration
	machTotal  time.Duration
	machOK     bool
	rss        int64 // bytes; 0 unknown
	goroutines float64
	gorOK      bool
	dropped    float64
	dropOK     bool
	goMem      float64 // Go heap + stacks in use, bytes
	goMemOK    bool
	written    float64 // audio frames the server wrote to sockets
	writtenOK  bool
	batchSum   float64 // messages written, over batchCount writes
	batchCount float64
	batchOK    bool
}

// read takes a reading; withMetrics also scrapes /metrics (goroutines, drops).
func (t *target) read(ctx context.Context, withMetrics bool) usage {
	u := usage{at: time.Now(), selfCPU: selfCPU()}
	u.machBusy, u.machSoft, u.machTotal, u.machOK = machineCPU()
	if t.pid > 0 {
		if c, err := procCPU(t.pid); err == nil {
			u.serverCPU, u.serverOK = c, true
		}
		if r, err := procRSS(t.pid); err == nil {
			u.rss = r
		}
	}
	if withMetrics && t.metricsURL != "" {
		if m, err := scrape(ctx, t.metricsURL); err == nil {
			if v, ok := m[metricGoroutines]; ok && t.mode != ModeInProcess {
				u.goroutines, u.gorOK = v, true
			}
			h, ok1 := m[metricHeapInuse]
			st, ok2 := m[metricStackInuse]
			if ok1 && ok2 && t.mode != ModeInProcess {
				u.goMem, u.goMemOK = h+st, true
			}
			if v, ok := m[metricWritten]; ok {
				u.written, u.writtenOK = v, true
			}
			bs, ok1 := m[metricBatchSum]
			bc, ok2 := m[metricBatchCount]
			if ok1 && ok2 {
				u.batchSum, u.batchCount, u.batchOK = bs, bc, true
			}
			if v, ok := m[metricDropped]; ok {
				u.dropped, u.dropOK = v, true
			}
			if v, ok := m[metricRSS]; ok && u.rss == 0 && t.mode == ModeExternal && t.pid == 0 {
				u.rss = int64(v)
			}
		}
	}
	return u
}

// ChildReady is what a server child prints once it listens on addr.
func ChildReady(addr net.Addr) string { return childAddrPrefix + addr.String() }

// sanitize keeps error text short and on one line for reports.
func sanitize(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120]
	}
	return strings.TrimSpace(s)
}
