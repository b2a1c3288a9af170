package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/api"
)

// fill sets every field reachable from v to a non-zero value, so that a
// copy that forgets a field shows up as a difference.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i))
		}
	case reflect.Map:
		// nullable.Nullable is map[bool]T: {true: value} is "a value".
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCreatedCopiesEveryField: LeadCreated and CustomerCreated answer
// every field of Lead and Customer, plus placement. The generator
// flattens allOf into structs of their own, so the handlers copy fields
// one by one; this fails when the representation gains one the copy
// misses.
func TestCreatedCopiesEveryField(t *testing.T) {
	var l api.Lead
	fill(reflect.ValueOf(&l).Elem())
	var c api.Customer
	fill(reflect.ValueOf(&c).Elem())
	for _, tc := range []struct {
		name      string
		rep, made any
	}{
		{"lead", l, leadCreated(l, "owned")},
		{"customer", c, customerCreated(c, "owned")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, got := asMap(t, tc.rep), asMap(t, tc.made)
			if got["placement"] != "owned" {
				t.Fatalf("placement = %v", got["placement"])
			}
			delete(got, "placement")
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("created answer differs from the representation:\n got %v\nwant %v", got, want)
			}
			if n := reflect.TypeOf(tc.made).NumField(); n != reflect.TypeOf(tc.rep).NumField()+1 {
				t.Fatalf("%T has %d fields, want the representation's and placement", tc.made, n)
			}
		})
	}
}
