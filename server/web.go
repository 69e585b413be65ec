package server

import "net/http"

// registerWeb serves the web apps. Until they land this is a small page that
// says how to use the CLI.
func registerWeb(mux *http.ServeMux) {
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(placeholder))
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /speak", page)
	mux.HandleFunc("GET /listen/{id}", page)
}

const placeholder = `<!doctype html><meta charset="utf-8"><title>Pentecost</title>
<h1>Pentecost</h1><p>The browser apps are not part of this build yet. Use the command line:
<pre>pentecost speak --file sermon.wav
pentecost listen SESSION_ID --lang es</pre>`
