package dedupe

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"whitespace only", " \t\u3000\n", ""},
		{"punctuation only", "，。！？-_()（）【】", ""},
		{"symbols only", "★☆©®™+=$€", ""},
		{"trademark sign", "Foo™", "foo"},
		{"fraction", "½", "12"},
		{"full-width latin with legal form", "ＡＢＣ科技有限公司", "abc科技"},
		{"already normalised", "abc科技", "abc科技"},
		{"mixed punctuation and ideographic space", "ABC-123　北京，客户", "abc123北京客户"},
		{"english co ltd with spaces", "  Foo Trading Co., Ltd. ", "footrading"},
		{"chinese limited company", "华为技术有限公司", "华为技术"},
		{"group", "阿里巴巴集团", "阿里巴巴"},
		{"legal form alone is kept", "有限公司", "有限公司"},
		{"longest legal form alone is kept", "股份有限公司", "股份有限公司"},
		{"group limited company", "XX集团有限公司", "xx"},
		{"stacked chinese forms", "XX集团股份有限公司", "xx"},
		{"limited liability company", "深圳市腾讯计算机系统有限责任公司", "深圳市腾讯计算机系统"},
		{"gongsi alone is kept", "北京百度网讯科技公司", "北京百度网讯科技公司"},
		{"branch office is kept", "华为技术有限公司北京分公司", "华为技术有限公司北京分公司"},
		{"legal form in the middle is kept", "有限公司服务中心", "有限公司服务中心"},
		{"co ltd without comma", "Foo Co Ltd", "foo"},
		{"co ltd without space", "Foo co.,ltd", "foo"},
		{"ltd", "Foo Ltd.", "foo"},
		{"limited", "Foo Limited", "foo"},
		{"company limited", "Foo Company Limited", "foo"},
		{"inc with dot", "Foo, Inc.", "foo"},
		{"llc", "Foo LLC", "foo"},
		{"corp", "Foo Corp.", "foo"},
		{"corporation", "Foo Corporation", "foo"},
		{"gmbh", "Foo GmbH", "foo"},
		{"stacked english forms", "Foo Ltd. Inc.", "foo"},
		{"english form alone is kept", "Ltd.", "ltd"},
		{"co ltd alone is kept", "Co., Ltd.", "coltd"},
		{"english form inside a word is kept", "Zinc", "zinc"},
		{"limited inside a word is kept", "Unlimited", "unlimited"},
		{"word ending like a form then a form", "Unlimited Ltd", "unlimited"},
		{"english form glued to chinese", "ABC科技Ltd", "abc科技"},
		{"english form after chinese form", "ABC科技有限公司 Co., Ltd.", "abc科技"},
		{"chinese form split by spaces", "ABC 有限 公司", "abc"},
		{"full-width english", "ＦＯＯ　ＴＲＡＤＩＮＧ　ＣＯ．，ＬＴＤ．", "footrading"},
		{"full-width digits", "１２３科技", "123科技"},
		{"ideographic full stop", "上海。贸易", "上海贸易"},
		{"half-width katakana", "ｿﾆｰ", "ソニー"},
		{"person name with space", "Zhang San", "zhangsan"},
		{"person name with middle dot", "阿卜杜·热合曼", "阿卜杜热合曼"},
		{"zero-width space", "华为\u200b技术", "华为技术"},
		{"accents composed", "Cafe\u0301 Ltd", "café"},
		{"long", strings.Repeat("ABC ", 1000) + "有限公司", strings.Repeat("abc", 1000)},
		{"long run of legal forms", "Foo" + strings.Repeat(" Ltd", 10000), "foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Name(tt.in); got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPhone(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"no digits", "n/a", ""},
		{"too short", "1234", ""},
		{"shortest usable", "12345", "12345"},
		{"mobile", "13800138000", "13800138000"},
		{"mobile with +86", "+86 138-0013-8000", "13800138000"},
		{"mobile with 0086", "0086 13800138000", "13800138000"},
		{"mobile with bare 86", "8613800138000", "13800138000"},
		{"mobile with 0086 twice", "0086 0086 13800138000", "13800138000"},
		{"landline keeps area code", "(010) 8888-6666", "01088886666"},
		{"landline with +86", "+86 10 8888 6666", "01088886666"},
		{"landline with 0086", "0086-21-6888-8888", "02168888888"},
		{"landline with +86 and trunk zero", "+86 (0)10 8888 6666", "01088886666"},
		{"local number starting 86 is kept", "8612 3456", "86123456"},
		{"bare 86 before landline is kept", "86 10 8888 6666", "861088886666"},
		{"full-width digits", "１３８００１３８０００", "13800138000"},
		{"full-width plus", "＋８６ １３８ ００１３ ８０００", "13800138000"},
		{"extension 转", "010-88886666转123", "01088886666"},
		{"extension 分机", "010-88886666分机123", "01088886666"},
		{"extension ext", "010-88886666 ext. 123", "01088886666"},
		{"extension EXT", "010-88886666 EXT 123", "01088886666"},
		{"extension x", "010-88886666x123", "01088886666"},
		{"extension X", "010-88886666 X 123", "01088886666"},
		{"full-width extension", "010-88886666ｅｘｔ123", "01088886666"},
		{"label before number", "Fax: 010-8888-6666", "01088886666"},
		{"label before mobile", "手机：138 0013 8000", "13800138000"},
		{"other country with +", "+1 (415) 555-0100", "0014155550100"},
		{"other country with 00", "001 415 555 0100", "0014155550100"},
		{"plus alone", "+86", ""},
		{"long", strings.Repeat("1", 200), strings.Repeat("1", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Phone(tt.in); got != tt.want {
				t.Errorf("Phone(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEmail(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"whitespace only", " \u3000 ", ""},
		{"no at sign", "foo.example.com", ""},
		{"trimmed and lower-cased", "Foo@Example.com ", "foo@example.com"},
		{"ideographic spaces", "\u3000Foo@Example.com\u3000", "foo@example.com"},
		{"tabs and newlines", "\tfoo@example.com\n", "foo@example.com"},
		{"full-width", "ｆｏｏ＠ＥＸＡＭＰＬＥ．ｃｏｍ", "foo@example.com"},
		{"inner content kept", "First.Last+tag@Example.COM", "first.last+tag@example.com"},
		{"long", strings.Repeat("A", 500) + "@example.com", strings.Repeat("a", 500) + "@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Email(tt.in); got != tt.want {
				t.Errorf("Email(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzName(f *testing.F) {
	for _, seed := range []string{
		"", "ＡＢＣ科技有限公司", "ABC-123　北京，客户", "  Foo Trading Co., Ltd. ",
		"阿里巴巴集团", "有限公司", "Zinc Inc", "ABC科技Ltd", "Cafe\u0301",
		"\u1100.\u1161", "+86 138-0013-8000", "010-88886666转123", "0086 0086 10 8888",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := Name(s)
		if again := Name(name); again != name {
			t.Errorf("Name not idempotent: Name(%q) = %q, Name(%q) = %q", s, name, name, again)
		}

		phone := Phone(s)
		if strings.Trim(phone, "0123456789") != "" {
			t.Errorf("Phone(%q) = %q, want digits only", s, phone)
		}
		if again := Phone(phone); again != phone {
			t.Errorf("Phone not idempotent: Phone(%q) = %q, Phone(%q) = %q", s, phone, phone, again)
		}

		email := Email(s)
		if again := Email(email); again != email {
			t.Errorf("Email not idempotent: Email(%q) = %q, Email(%q) = %q", s, email, email, again)
		}
	})
}

func BenchmarkName(b *testing.B) {
	for b.Loop() {
		Name("  深圳市ＡＢＣ科技集团股份有限公司 Foo Trading Co., Ltd. ")
	}
}

func BenchmarkPhone(b *testing.B) {
	for b.Loop() {
		Phone("+86 (010) 8888-6666 转 123")
	}
}
