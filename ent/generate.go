// Package ent holds the storage model generated from ent/schema.
// Nothing here but this file is edited by hand: change a schema and run `make generate`.
package ent

//go:generate go tool ent generate --feature sql/lock,sql/upsert,sql/execquery,sql/modifier ./schema
