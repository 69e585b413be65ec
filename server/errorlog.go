package server

import (
	"context"
	"log"
	"log/slog"
	"net/netip"
	"regexp"

	"github.com/pentecost/pentecost/internal/ws"
)

// httpErrorLog is net/http's error log, at debug level, with every client
// address in it ("http: TLS handshake error from 203.0.113.7:51234: ...",
// which scanners of an HTTPS server cause all day) cut to its network, as
// every other log line does: full client IPs are never logged.
func httpErrorLog(h slog.Handler) *log.Logger {
	return slog.NewLogLogger(redactAddrs{h}, slog.LevelDebug)
}

type redactAddrs struct{ slog.Handler }

var addrPort = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-zA-Z]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}:\d+`)

func (r redactAddrs) Handle(ctx context.Context, rec slog.Record) error {
	msg := addrPort.ReplaceAllStringFunc(rec.Message, func(s string) string {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return "[address]"
		}
		return ws.Redact(ap.Addr().Unmap())
	})
	out := slog.NewRecord(rec.Time, rec.Level, msg, rec.PC)
	rec.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return r.Handler.Handle(ctx, out)
}

func (r redactAddrs) WithAttrs(as []slog.Attr) slog.Handler {
	return redactAddrs{r.Handler.WithAttrs(as)}
}

func (r redactAddrs) WithGroup(name string) slog.Handler {
	return redactAddrs{r.Handler.WithGroup(name)}
}
