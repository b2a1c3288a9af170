package money

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// This file is why the package may never import the generated ent
// package: ent/schema imports money.

// Column declares a money column in an ent schema. Every module declares
// its amounts through Field, so they are all the same: a BIGINT of fen
// (integer on SQLite) with the Go type Money.
//
//	money.Field("amount")                       // NOT NULL, set on create
//	money.Field("credit_limit").Optional()      // NULL allowed, *money.Money
type Column struct{ d *field.Descriptor }

// Field starts a money column named name (also the column name, unless
// StorageKey says otherwise).
func Field(name string) *Column {
	return &Column{d: field.Int64(name).GoType(Money{}).Descriptor()}
}

// Optional makes the column NULLable and the entity field a *Money, so
// "no amount" stays distinct from 0.00.
func (c *Column) Optional() *Column {
	c.d.Optional, c.d.Nillable = true, true
	return c
}

// Immutable makes the column settable on create only.
func (c *Column) Immutable() *Column {
	c.d.Immutable = true
	return c
}

// StorageKey names the database column when it differs from the field
// name (a column that replaced an older one of another type, say).
func (c *Column) StorageKey(key string) *Column {
	c.d.StorageKey = key
	return c
}

// Comment documents the column in the generated code.
func (c *Column) Comment(text string) *Column {
	c.d.Comment = text
	return c
}

// Descriptor implements ent.Field.
func (c *Column) Descriptor() *field.Descriptor { return c.d }

var _ ent.Field = (*Column)(nil)
