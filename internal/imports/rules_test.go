package imports

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func gbk(t *testing.T, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// XLSX builds a workbook whose first sheet holds rows.
func XLSX(t testing.TB, rows [][]string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	for i, r := range rows {
		cells := make([]any, len(r))
		for j, c := range r {
			cells[j] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &cells); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParse(t *testing.T) {
	t.Parallel()
	const text = "姓名,公司,手机\n张三,上海某某科技,13800138000\n"
	want := [][]string{{"张三", "上海某某科技", "13800138000"}}
	cases := []struct {
		name, encoding, wantEnc, wantFormat string
		file                                []byte
	}{
		{"utf-8", "", EncodingUTF8, FormatCSV, []byte(text)},
		{"utf-8 with BOM", "", EncodingUTF8, FormatCSV, append([]byte{0xEF, 0xBB, 0xBF}, text...)},
		{"gbk detected", "", EncodingGB18030, FormatCSV, gbk(t, text)},
		{"gbk stated", "GBK", EncodingGB18030, FormatCSV, gbk(t, text)},
		{"semicolons", "", EncodingUTF8, FormatCSV, []byte(strings.ReplaceAll(text, ",", ";"))},
		{"xlsx", "", "", FormatXLSX, XLSX(t, [][]string{{"姓名", "公司", "手机"}, want[0], {}, {}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, err := Parse(c.file, c.encoding)
			if err != nil {
				t.Fatal(err)
			}
			if tb.Encoding != c.wantEnc || tb.Format != c.wantFormat {
				t.Errorf("encoding %q format %q, want %q %q", tb.Encoding, tb.Format, c.wantEnc, c.wantFormat)
			}
			if !slices.Equal(tb.Header, []string{"姓名", "公司", "手机"}) {
				t.Errorf("header %q", tb.Header)
			}
			if len(tb.Rows) != 1 || !slices.Equal(tb.Rows[0], want[0]) {
				t.Errorf("rows %q", tb.Rows)
			}
		})
	}
	for name, file := range map[string][]byte{
		"stated utf-8 but gbk": gbk(t, text),
		"old xls":              {0xD0, 0xCF, 0x11, 0xE0, 0, 0},
		"broken xlsx":          []byte("PK\x03\x04garbage"),
		"empty":                []byte("\n\n"),
	} {
		enc := ""
		if name == "stated utf-8 but gbk" {
			enc = "utf-8"
		}
		if _, err := Parse(file, enc); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestMapColumns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, kind string
		header     []string
		mapping    map[string]string
		want       []string
		unknown    []int
		errCode    string
	}{
		{"chinese lead headers", "lead", []string{"姓名*", " 公司名称 ", "手机号", "邮箱", "来源", "地区", "备注", "生日"},
			nil, []string{"name", "company", "phone", "email", "source", "region", "notes", ""}, []int{7}, ""},
		{"english and a label clash", "lead", []string{"Name", "Phone", "电话"}, nil, []string{"name", "phone", ""}, []int{2}, ""},
		{"customer with a contact", "customer", []string{"客户名称", "联系人", "手机", "职位", "地址"}, nil,
			[]string{"name", "contactName", "contactPhone", "contactTitle", "address"}, nil, ""},
		{"mapping", "lead", []string{"客户", "Tel", "ignore me"}, map[string]string{"客户": "name", "ignore me": ""},
			[]string{"name", "phone", ""}, nil, ""},
		{"no name column", "lead", []string{"公司", "手机"}, nil, nil, nil, "missing_column"},
		{"mapping to nothing", "lead", []string{"姓名"}, map[string]string{"姓名": "nickname"}, nil, nil, "unknown_field"},
		{"mapped twice", "lead", []string{"a", "b"}, map[string]string{"a": "name", "b": "name"}, nil, nil, "duplicate_field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cols, err := MapColumns(c.kind, c.header, c.mapping)
			if c.errCode != "" {
				var m errMapping
				if err == nil || !asMapping(err, &m) || m.code != c.errCode {
					t.Fatalf("err %v, want %s", err, c.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cols.Field, c.want) || !slices.Equal(cols.Unknown, c.unknown) {
				t.Errorf("fields %q unknown %v, want %q %v", cols.Field, cols.Unknown, c.want, c.unknown)
			}
		})
	}
}

func asMapping(err error, m *errMapping) bool {
	e, ok := err.(errMapping)
	*m = e
	return ok
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	tb := &Table{Header: []string{"姓名", "公司", "手机", "邮箱"}, Rows: [][]string{
		{"张三", "甲公司", "13800138000", ""},
		{"", "乙公司", "", ""},                    // row 3: no name
		{"李四", "", "not a phone", ""},          // row 4
		{"王五", "", "", "nope"},                 // row 5
		{"赵六", "", "138 0013 8000", ""},        // row 6: the phone of row 2
		{"孙七", "", "", ""},                     // row 7: no key
		{"", "", "", ""},                       // row 8: empty
		{"周八", "甲 公司", "", "zhou@example.com"}, // row 9: the company of row 2
	}}
	cols, err := MapColumns("lead", tb.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := Prepare("lead", cols, tb)
	want := map[int]string{3: "required/姓名", 4: "invalid_phone/手机", 5: "invalid_email/邮箱", 6: "duplicate_in_file/手机",
		7: "missing_key/公司", 9: "duplicate_in_file/公司"}
	for i, ps := range got {
		row := i + 2
		w, ok := want[row]
		switch {
		case !ok && len(ps) > 0:
			t.Errorf("row %d: unexpected %+v", row, ps)
		case ok && (len(ps) != 1 || ps[0].Code+"/"+ps[0].Column != w || ps[0].Row != row):
			t.Errorf("row %d: %+v, want %s", row, ps, w)
		}
	}
}
