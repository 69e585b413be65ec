package client

import (
	"fmt"
	"net/url"
	"strings"
)

// WSURL turns a server base (http://host:port, https://host, ws://, wss://,
// or a bare host:port, which means http) into the WebSocket endpoint
// ws(s)://host:port/ws with the query q. A path on the base is kept as a
// prefix (a server behind a reverse proxy at /pentecost), and a base that
// already ends in /ws is used as is. q's values replace the base's.
func WSURL(base string, q url.Values) (string, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL: scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", base)
	}
	if !strings.HasSuffix(u.Path, "/ws") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	}
	u.RawPath = ""
	merged := u.Query()
	for k, v := range q {
		merged[k] = v
	}
	u.RawQuery = merged.Encode()
	u.Fragment = ""
	return u.String(), nil
}
