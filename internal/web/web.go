// Package web serves the two browser apps of Pentecost, embedded in the
// binary: the listener app (GET / and GET /listen/{id}) and the speaker app
// (GET /speak), plus their static assets under /static/.
//
// The apps are plain ES modules with no build step: what is in static/ is
// what the browser runs. See docs/webapps.md.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

// StaticPrefix is where the assets are served.
const StaticPrefix = "/static/"

// CSP is the Content-Security-Policy of every page and asset: everything
// from this origin only. connect-src 'self' also allows ws:/wss: to the same
// host (CSP Level 3; Chromium, Firefox and Safari implement it). img-src
// allows data: for nothing but future icons; the QR code is inline SVG.
// 'wasm-unsafe-eval' lets the listener compile the vendored WASM Opus
// decoder (and nothing else: it does not allow eval).
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; font-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

// assets maps a path under static/ ("js/listen.js") to its file.
var assets = func() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		m[strings.TrimPrefix(p, "static/")] = &asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: reading embedded files: " + err.Error())
	}
	return m
}()

// Register adds the apps' routes to mux: GET /, GET /speak,
// GET /listen/{id} and GET /static/... . It does not touch the server's
// other routes (/ws, /sessions, /languages, /healthz, /metrics).
func Register(mux *http.ServeMux) {
	listen := page("listen.html")
	mux.Handle("GET /{$}", listen)
	mux.Handle("GET /listen/{id}", listen)
	mux.Handle("GET /listen", http.RedirectHandler("/", http.StatusFound))
	mux.Handle("GET /speak", page("speak.html"))
	mux.Handle("GET "+StaticPrefix, http.StripPrefix(StaticPrefix, http.HandlerFunc(serveAsset)))
	mux.Handle("GET /favicon.ico", http.RedirectHandler(StaticPrefix+"icon.svg", http.StatusMovedPermanently))
}

// page serves one HTML file of the apps.
func page(name string) http.Handler {
	a := assets[name]
	if a == nil {
		panic("web: missing page " + name)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, a)
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	a := assets[p]
	if a == nil || strings.HasSuffix(p, "/") || p == "listen.html" || p == "speak.html" {
		setHeaders(w.Header())
		http.NotFound(w, r)
		return
	}
	serve(w, r, a)
}

func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// The speaker app uses the microphone; nothing else may.
	h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
}

// serve writes a with its type, the CSP and revalidation headers: the files
// have no content hash in their names, so browsers keep them but check the
// ETag before each use (a 304 costs one small round trip).
func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	setHeaders(h)
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
