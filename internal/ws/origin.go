package ws

import (
	"net/http"
	"net/url"
	"strings"
)

// OriginPolicy decides which browser origins may open a WebSocket. Requests
// without an Origin header (the CLI, processors, scripts) are not browsers
// and are allowed: the check protects users' browsers from other sites, it is
// not authentication.
type OriginPolicy struct {
	// Allowed is the allow-list; empty means same origin only, and "*"
	// allows every origin.
	Allowed []string
}

// ParseOrigins splits a comma-separated allow-list.
func ParseOrigins(list string) *OriginPolicy {
	p := &OriginPolicy{}
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			p.Allowed = append(p.Allowed, strings.ToLower(o))
		}
	}
	return p
}

// Check reports whether r's Origin is acceptable. scheme is the one the
// client used (ClientIP.Scheme): a same-origin page must have it too, so an
// https page is not the same origin as an http server on its host, nor the
// reverse.
func (p *OriginPolicy) Check(r *http.Request, scheme string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o := strings.ToLower(strings.TrimRight(origin, "/"))
	for _, a := range p.Allowed {
		if a == "*" || a == o {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// Allows reports whether origin is on the list (for CORS).
func (p *OriginPolicy) Allows(origin string) bool {
	o := strings.ToLower(strings.TrimRight(origin, "/"))
	for _, a := range p.Allowed {
		if a == "*" || a == o {
			return true
		}
	}
	return false
}
