package httpapi

import (
	"bytes"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/api"
)

// serveSpec serves openapi.yaml exactly as committed.
func (s *Server) serveSpec(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", api.SpecYAML)
}

// serveDocs serves a self-contained API reference rendered from the spec, so
// that it works offline and behind firewalls (no CDN scripts).
func (s *Server) serveDocs(c echo.Context) error {
	c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return c.HTMLBlob(http.StatusOK, s.docsPage)
}

type docOp struct {
	Method, Path, ID, Summary, Description string
	Params                                 []docParam
	Body                                   string
	Responses                              []docParam
	Public                                 bool
}

type docParam struct{ Name, In, Type, Description string }

type docTag struct {
	Name, Description string
	Ops               []docOp
}

// renderDocs renders the reference page once, at start-up.
func renderDocs(spec *openapi3.T) ([]byte, error) {
	tags := map[string]*docTag{}
	var order []string
	for _, t := range spec.Tags {
		tags[t.Name] = &docTag{Name: t.Name, Description: t.Description}
		order = append(order, t.Name)
	}
	paths := spec.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, p := range paths {
		methods := spec.Paths.Value(p).Operations()
		names := make([]string, 0, len(methods))
		for m := range methods {
			names = append(names, m)
		}
		sort.Strings(names)
		for _, m := range names {
			d := describeOp(m, p, methods[m])
			tag := "other"
			if len(methods[m].Tags) > 0 {
				tag = methods[m].Tags[0]
			}
			if tags[tag] == nil {
				tags[tag] = &docTag{Name: tag}
				order = append(order, tag)
			}
			tags[tag].Ops = append(tags[tag].Ops, d)
		}
	}
	var list []docTag
	for _, name := range order {
		if len(tags[name].Ops) > 0 {
			list = append(list, *tags[name])
		}
	}
	var buf bytes.Buffer
	err := docsTemplate.Execute(&buf, map[string]any{"Info": spec.Info, "Tags": list})
	return buf.Bytes(), err
}

func describeOp(method, path string, op *openapi3.Operation) docOp {
	d := docOp{Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Description: op.Description,
		Public: op.Security != nil && len(*op.Security) == 0}
	for _, pr := range op.Parameters {
		if pr.Value != nil {
			d.Params = append(d.Params, docParam{Name: pr.Value.Name, In: pr.Value.In, Type: schemaName(pr.Value.Schema), Description: pr.Value.Description})
		}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		for ct, mt := range op.RequestBody.Value.Content {
			d.Body = ct + " " + schemaName(mt.Schema)
		}
	}
	codes := op.Responses.Map()
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		desc := ""
		if r := codes[k]; r.Value != nil && r.Value.Description != nil {
			desc = *r.Value.Description
		}
		d.Responses = append(d.Responses, docParam{Name: k, Description: desc})
	}
	return d
}

func schemaName(ref *openapi3.SchemaRef) string {
	if ref == nil {
		return ""
	}
	if ref.Ref != "" {
		return ref.Ref[strings.LastIndexByte(ref.Ref, '/')+1:]
	}
	if ref.Value != nil && ref.Value.Type != nil {
		return strings.Join(ref.Value.Type.Slice(), "|")
	}
	return ""
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Info.Title}} reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
code,.path{font-family:ui-monospace,monospace}.op{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}.GET{color:#1a7f37}.POST{color:#0969da}.PATCH{color:#9a6700}.DELETE{color:#cf222e}.PUT{color:#8250df}
table{border-collapse:collapse;font-size:14px}td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;vertical-align:top}.pub{color:#888;font-size:12px}
</style></head><body>
<h1>{{.Info.Title}} <small>{{.Info.Version}}</small></h1>
<p>The machine-readable contract is at <a href="/openapi.yaml">/openapi.yaml</a>.</p>
<pre style="white-space:pre-wrap">{{.Info.Description}}</pre>
{{range .Tags}}<h2 id="{{.Name}}">{{.Name}}</h2><p>{{.Description}}</p>
{{range .Ops}}<div class="op" id="{{.ID}}"><div><span class="m {{.Method}}">{{.Method}}</span> <span class="path">{{.Path}}</span> — <code>{{.ID}}</code>{{if .Public}} <span class="pub">(no authentication)</span>{{end}}</div>
<p><b>{{.Summary}}</b><br>{{.Description}}</p>
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Body: <code>{{.Body}}</code></p>{{end}}
<table>{{range .Responses}}<tr><td><code>{{.Name}}</code></td><td>{{.Description}}</td></tr>{{end}}</table></div>
{{end}}{{end}}</body></html>`))
