// Package api holds the server interfaces and models generated from openapi.yaml.
// Nothing here is edited by hand: change the spec and run `make generate`.
package api

import _ "embed" // for SpecYAML

//go:generate go tool oapi-codegen -config cfg.yaml ../openapi.yaml
//go:generate cp ../openapi.yaml openapi.gen.yaml

// SpecYAML is openapi.yaml exactly as written, served at GET /openapi.yaml.
//
//go:embed openapi.gen.yaml
var SpecYAML []byte
