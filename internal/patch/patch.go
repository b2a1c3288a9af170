// Package patch represents JSON merge-patch fields in domain code: a field
// may be absent (unchanged), null (cleared) or a value.
package patch

// Field is one field of a merge patch.
type Field[T any] struct {
	// Set is true when the field was present in the patch.
	Set bool
	// Value is nil when the field was present and null.
	Value *T
}

// Value returns a Field set to v.
func Value[T any](v T) Field[T] { return Field[T]{Set: true, Value: &v} }

// Null returns a Field set to null.
func Null[T any]() Field[T] { return Field[T]{Set: true} }

// Apply sets a field that was given a value, clears one given null, and
// leaves an absent one alone.
func Apply[T any](f Field[T], set func(T), clear func()) {
	switch {
	case !f.Set:
	case f.Value == nil:
		clear()
	default:
		set(*f.Value)
	}
}

// OrZero is f for a domain input that stores "not set" as the zero value
// (optional text is "" when unset): nil when the field was absent, a
// pointer to the zero value when it was null (null clears), else a pointer
// to the value.
func OrZero[T any](f Field[T]) *T {
	if !f.Set {
		return nil
	}
	if f.Value == nil {
		var zero T
		return &zero
	}
	return f.Value
}

// OrNil is f for a domain input that stores "not set" as nil: absent and
// null are both nil.
func OrNil[T any](f Field[T]) *T { return f.Value }

// ApplyTo is Apply for an ent update builder's setters, which return the
// builder: m.SetColor and m.ClearColor pass as they are.
func ApplyTo[T, M any](f Field[T], set func(T) M, clear func() M) {
	Apply(f, func(v T) { set(v) }, func() { clear() })
}
