package server

import (
	"net/http"

	"github.com/pentecost/pentecost/internal/web"
)

// registerWeb serves the browser apps (package web): the listener app at /
// and /listen/{id}, the speaker app at /speak, their assets under /static/.
func registerWeb(mux *http.ServeMux) {
	web.Register(mux)
}
