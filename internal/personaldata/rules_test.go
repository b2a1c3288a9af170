package personaldata

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
)

func ptr(s string) *string { return &s }

func TestKeyOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		q    Query
		want Key
		bad  bool
	}{
		{"phone", Query{Phone: ptr("+86 138-0013-8000")}, Key{ByPhone, "+86 138-0013-8000", "13800138000"}, false},
		{"email", Query{Email: ptr(" Zhang@Example.COM ")}, Key{ByEmail, "Zhang@Example.COM", "zhang@example.com"}, false},
		{"name", Query{Name: ptr("张 三丰")}, Key{ByName, "张 三丰", "张三丰"}, false},
		{"none", Query{}, Key{}, true},
		{"two", Query{Phone: ptr("13800138000"), Name: ptr("张三")}, Key{}, true},
		{"short phone", Query{Phone: ptr("123")}, Key{}, true},
		{"not an email", Query{Email: ptr("nobody")}, Key{}, true},
		{"blank name", Query{Name: ptr("  ")}, Key{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := KeyOf(c.q)
			if c.bad {
				if !apperr.HasCode(err, "validation_failed") {
					t.Fatalf("KeyOf = %v, %v; want validation_failed", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("KeyOf = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	var v Values
	v.Add("张三丰")
	v.AddEmail("Zhang@Example.com")
	v.AddPhone("13800138000")
	v.Add("王") // too short to redact in text
	cases := []struct{ in, want string }{
		{"张三丰说明天回电", "[已删除]说明天回电"},
		{"call +86 138-0013-8000 today", "call [已删除] today"},
		{"手机13800138000转123", "手机[已删除]转123"},
		{"tel (138) 0013 8000, fax 010 1234 5678", "tel ([已删除], fax 010 1234 5678"},
		{"全角１３８００１３８０００", "全角[已删除]"},
		{"mail ZHANG@example.COM.", "mail [已删除]."},
		{"Ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "[已删除]"},
		{"No.13800138000123", "No.[已删除]123"},
		{"13800138000 13800138000", "[已删除] [已删除]"},
		{"王伟 and 138", "王伟 and 138"},
		{"", ""},
	}
	if got, _ := v.RedactWithin("张三丰说", 4); got != "*说" {
		t.Errorf("RedactWithin over the limit = %q", got)
	}
	if got, _ := v.RedactWithin("张三丰说", 8); got != "[已删除]说" {
		t.Errorf("RedactWithin under the limit = %q", got)
	}
	for _, c := range cases {
		got, changed := v.Redact(c.in)
		if got != c.want || changed != (c.in != c.want) {
			t.Errorf("Redact(%q) = %q, %v; want %q", c.in, got, changed, c.want)
		}
	}
}

func TestLowestID(t *testing.T) {
	t.Parallel()
	at := time.Now()
	low := LowestID(at)
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	if low.String() > id.String() || bytes.Compare(low[:], id[:]) > 0 {
		t.Errorf("LowestID(now) %s after a new id %s", low, id)
	}
	if later := LowestID(at.Add(time.Second)); later.String() <= id.String() {
		t.Errorf("LowestID(now+1s) %s not after %s", later, id)
	}
}
