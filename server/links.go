package server

import (
	"net/http"

	"github.com/pentecost/pentecost/internal/lan"
	"github.com/pentecost/pentecost/internal/links"
)

// registerLinks serves GET /links (package links): the base URLs the
// speaker page offers its listeners.
func (s *Server) registerLinks(mux *http.ServeMux, ifs lan.Source) {
	if ifs == nil {
		ifs = lan.System
	}
	s.links = &links.Handler{Scheme: Scheme(s.cfg), Interfaces: ifs, Logger: s.log}
	mux.Handle("GET /links", s.links)
}
