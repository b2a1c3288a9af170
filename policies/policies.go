// Package policies embeds Shoal's casbin model and policy, so the binary
// carries the exact rules that were reviewed with the code.
package policies

import _ "embed" // for the files below

// Model is model.conf.
//
//go:embed model.conf
var Model string

// Policy is policy.csv.
//
//go:embed policy.csv
var Policy string
