package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/api"
)

// The API reference is Redoc's standalone bundle, pinned from npm (see
// docsui/README.md for the version and how to refresh it) and embedded, so
// that /docs works offline and behind firewalls: no CDN, no fonts or
// scripts fetched from elsewhere.
const redocVersion = "2.5.4"

// docsScriptPath carries the version, so the bundle can be cached for good
// and a new one is a new URL.
const docsScriptPath = "/docs/redoc-" + redocVersion + ".standalone.js"

var (
	//go:embed docsui/redoc.standalone.js
	redocJS []byte
	//go:embed docsui/redoc.standalone.js.sha256
	redocSHA string

	redocGzOnce sync.Once
	redocGz     []byte
)

// docsCSP lets the page run only the embedded script and read only this
// server's spec. Redoc (styled-components) writes <style> elements, hence
// inline styles; it draws icons from data: URIs; its search index runs in
// a Web Worker it builds from a blob: URL. Anything else, such as the
// Redocly logo its footer points at on a CDN, is refused.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docsPage is the whole reference page: Redoc renders openapi.yaml as this
// server serves it. No inline script: the CSP forbids it.
var docsPage = []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal API reference</title>
<link rel="icon" href="data:,">
<style>body{margin:0;padding:0}</style>
</head><body>
<noscript>The reference needs JavaScript. The contract itself is at <a href="/openapi.yaml">/openapi.yaml</a>.</noscript>
<redoc spec-url="/openapi.yaml" required-props-first="true" path-in-middle-panel="true" expand-responses="200,201,202"></redoc>
<script src="` + docsScriptPath + `"></script>
</body></html>`)

// checkRedoc verifies the embedded bundle is the one pinned: a hand edit or
// a half-copied refresh fails the server's start (and the tests).
func checkRedoc() error {
	sum := sha256.Sum256(redocJS)
	if got, want := hex.EncodeToString(sum[:]), strings.TrimSpace(redocSHA); got != want {
		return fmt.Errorf("docsui/redoc.standalone.js has sha256 %s, docsui/redoc.standalone.js.sha256 says %s", got, want)
	}
	return nil
}

// serveSpec serves openapi.yaml exactly as committed.
func (s *Server) serveSpec(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", api.SpecYAML)
}

// serveDocs serves the reference page.
func (s *Server) serveDocs(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("Cache-Control", "no-cache")
	return c.HTMLBlob(http.StatusOK, docsPage)
}

// serveDocsScript serves the embedded Redoc bundle, gzipped for clients
// that take it (a third of the size).
func (s *Server) serveDocsScript(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	if !strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip") {
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", redocJS)
	}
	redocGzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(redocJS)
		_ = zw.Close()
		redocGz = buf.Bytes()
	})
	h.Set("Content-Encoding", "gzip")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", redocGz)
}
