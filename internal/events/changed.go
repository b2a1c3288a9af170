package events

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"entgo.io/ent"
)

// bookkeeping are columns an update sets that are no field a client
// changed: derived keys, counters and paths.
var bookkeeping = map[string]bool{
	"version": true, "updated_at": true, "session_epoch": true, "team_path": true, "path": true,
	"rule_version": true,
}

// secretNames renames stored columns that hold a secret's derivative to
// the field the client changed.
var secretNames = map[string]string{"password_hash": "password", "secret_sealed": "secret", "previous_secret_sealed": "secret",
	"previous_secret_until": "secret"}

// ChangedFields returns the API names (camelCase) of the fields an update
// mutation changes: set to a value different from the stored one, or
// cleared while set. Call it before the mutation executes: it compares
// with the stored row (free for UpdateOne(node), one read by id for
// UpdateOneID). Derived columns (…_norm, version, updated_at, paths) are
// left out; a password hash is reported as "password". Only names: values
// may be masked or secret.
func ChangedFields(ctx context.Context, m ent.Mutation) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if n, ok := secretNames[name]; ok {
			name = n
		}
		api := camel(name)
		if !seen[api] {
			seen[api] = true
			out = append(out, api)
		}
	}
	skip := func(name string) bool { return bookkeeping[name] || strings.HasSuffix(name, "_norm") }
	for _, name := range m.Fields() {
		if skip(name) {
			continue
		}
		now, _ := m.Field(name)
		old, err := m.OldField(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("changed fields: old %s: %w", name, err)
		}
		if !same(old, now) {
			add(name)
		}
	}
	for _, name := range m.ClearedFields() {
		if skip(name) {
			continue
		}
		old, err := m.OldField(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("changed fields: old %s: %w", name, err)
		}
		if !isNil(old) {
			add(name)
		}
	}
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// same compares a stored value (nullable fields come back as pointers)
// with a new one.
func same(old, now any) bool {
	old, now = deref(old), deref(now)
	if a, ok := old.(time.Time); ok {
		b, ok := now.(time.Time)
		return ok && a.Equal(b)
	}
	if isNil(old) || isNil(now) {
		return isNil(old) && isNil(now)
	}
	if reflect.TypeOf(old) != reflect.TypeOf(now) && reflect.TypeOf(now).ConvertibleTo(reflect.TypeOf(old)) {
		now = reflect.ValueOf(now).Convert(reflect.TypeOf(old)).Interface()
	}
	return reflect.DeepEqual(old, now)
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		return rv.Elem().Interface()
	}
	return v
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// camel turns a column name into the API's spelling: credit_limit →
// creditLimit.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
