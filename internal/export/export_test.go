package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

type rec struct {
	ID    int
	Name  string
	Notes *string
	Tags  []string
}

var cols = []Column[rec]{
	{EN: "ID", ZH: "编号", Value: func(r rec) string { return fmt.Sprint(r.ID) }},
	{EN: "Name", ZH: "名称", Value: func(r rec) string { return r.Name }},
	{EN: "Notes", ZH: "备注", Value: func(r rec) string { return Text(r.Notes) }},
	{EN: "Tags", ZH: "标签", Value: func(r rec) string { return Tags(r.Tags) }},
}

func str(s string) *string { return &s }

// sample is n records whose values exercise quoting, XML escaping, line
// breaks, formulas and Chinese text.
func sample(n int) []rec {
	names := []string{"北京客户", `a "quoted", name`, "<b>&amp;</b>", "=HYPERLINK(\"x\")", "+86 138 0000 0000", " padded ", "line\nbreak\r\nCRLF"}
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{ID: i, Name: names[i%len(names)], Tags: []string{"vip", "标签"}[:i%3%2+1]}
		if i%2 == 0 {
			out[i].Notes = str("note\t" + fmt.Sprint(i))
		}
	}
	return out
}

// pages yields rows in pages of size.
func pages(rows []rec, size int) ([]rec, Pager[rec]) {
	first := rows[:min(size, len(rows))]
	rest := rows[len(first):]
	return first, func(context.Context) ([]rec, error) {
		p := rest[:min(size, len(rest))]
		rest = rest[len(p):]
		return p, nil
	}
}

// csvWant is want as encoding/csv reads it back: CR LF inside a value as LF.
func csvWant(want [][]string) [][]string {
	out := make([][]string, len(want))
	for i, r := range want {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = strings.ReplaceAll(v, "\r\n", "\n")
		}
	}
	return out
}

func expected(rows []rec, chinese bool) [][]string {
	out := [][]string{Header(cols, chinese)}
	for _, r := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = c.Value(r)
		}
		out = append(out, line)
	}
	return out
}

// readCSV reads a CSV export with encoding/csv. That reader drops a CR
// before LF even inside a quoted value, where the file keeps it (see
// csvWant).
func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.Contains(b, []byte("break\r\nCRLF")) && bytes.Contains(b, []byte("break")) {
		t.Fatal("the CSV lost a value's CR LF")
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read csv: %v", err)
	}
	return all
}

// readXLSX reads every sheet's rows, padded to the header's width
// (excelize drops trailing empty cells), and the sheet names.
func readXLSX(t *testing.T, b []byte) ([][][]string, []string) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("open xlsx: %v", err)
	}
	defer f.Close()
	var sheets [][][]string
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			t.Fatalf("rows of %s: %v", name, err)
		}
		for i := range rows {
			for len(rows[i]) < len(rows[0]) {
				rows[i] = append(rows[i], "")
			}
		}
		sheets = append(sheets, rows)
	}
	return sheets, f.GetSheetList()
}

func equal(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
			t.Fatalf("%s row %d: %q, want %q", what, i, got[i], want[i])
		}
	}
}

func TestWriteReadsBack(t *testing.T) {
	t.Parallel()
	rows := sample(23)
	for _, tc := range []struct {
		name    string
		o       Options
		chinese bool
	}{
		{"csv", Options{Format: CSV}, false},
		{"csv zh", Options{Format: CSV, Chinese: true}, true},
		{"xlsx", Options{Format: XLSX, Sheet: "leads"}, false},
		{"xlsx zh", Options{Format: XLSX, Sheet: "leads", Chinese: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			first, next := pages(rows, 5)
			finished := -1
			n, err := Write(context.Background(), &b, cols, tc.o, first, next, func(n int) error { finished = n; return nil })
			if err != nil || n != len(rows) || finished != len(rows) {
				t.Fatalf("Write: %d rows (finish saw %d), %v", n, finished, err)
			}
			want := expected(rows, tc.chinese)
			if tc.o.Format == CSV {
				if bytes.HasPrefix(b.Bytes(), []byte(bom)) {
					t.Fatal("BOM without bom")
				}
				equal(t, "csv", readCSV(t, b.Bytes()), csvWant(want))
				return
			}
			zr, err := zip.NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
			if err != nil || zr.File[0].Name != "[Content_Types].xml" {
				t.Fatalf("zip: %v; first entry %s", err, zr.File[0].Name)
			}
			sheets, names := readXLSX(t, b.Bytes())
			if len(sheets) != 1 || names[0] != "leads" {
				t.Fatalf("sheets %v", names)
			}
			equal(t, "xlsx", sheets[0], want)
		})
	}
}

func TestCSVForExcel(t *testing.T) {
	t.Parallel()
	rows := sample(7)
	var b bytes.Buffer
	first, next := pages(rows, 100)
	if _, err := Write(context.Background(), &b, cols, Options{Format: CSV, BOM: true}, first, next, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("\xef\xbb\xbf")) {
		t.Fatalf("no BOM: % x", b.Bytes()[:8])
	}
	got := readCSV(t, bytes.TrimPrefix(b.Bytes(), []byte(bom)))
	want := expected(rows, false)
	for i := range want {
		for j := range want[i] {
			want[i][j] = Neutralize(want[i][j])
		}
	}
	equal(t, "csv bom", got, csvWant(want))
	if got[4][1] != `'=HYPERLINK("x")` || got[5][1] != "'+86 138 0000 0000" {
		t.Fatalf("formulas not neutralized: %q %q", got[4][1], got[5][1])
	}
}

func TestNeutralize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "", "abc": "abc", "=1+2": "'=1+2", "+86": "'+86", "-5": "'-5", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b", "北京": "北京",
	} {
		if got := Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestXLSXContinuesOnAnotherSheet: past a sheet's rows, the export goes on
// in the next sheet, header first, and no row is lost.
func TestXLSXContinuesOnAnotherSheet(t *testing.T) {
	t.Parallel()
	rows := sample(10)
	var b bytes.Buffer
	first, next := pages(rows, 3)
	if _, err := Write(context.Background(), &b, cols, Options{Format: XLSX, Sheet: "a/b", SheetRows: 4}, first, next, nil); err != nil {
		t.Fatal(err)
	}
	sheets, names := readXLSX(t, b.Bytes())
	if strings.Join(names, ",") != "a_b,a_b 2,a_b 3,a_b 4" {
		t.Fatalf("sheets %q", names)
	}
	var all [][]string
	for i, s := range sheets {
		if strings.Join(s[0], ",") != "ID,Name,Notes,Tags" {
			t.Fatalf("sheet %d header %q", i, s[0])
		}
		all = append(all, s[1:]...)
	}
	equal(t, "xlsx sheets", append([][]string{Header(cols, false)}, all...), expected(rows, false))
}

// TestWriteStops: a failing page, a cancelled context or a failing finish
// leave the file without its end.
func TestWriteStops(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	rows := sample(9)
	for _, f := range []Format{CSV, XLSX} {
		first, _ := pages(rows, 3)
		var b bytes.Buffer
		_, err := Write(context.Background(), &b, cols, Options{Format: f}, first, func(context.Context) ([]rec, error) { return nil, boom }, nil)
		if !errors.Is(err, boom) {
			t.Fatalf("%s page error: %v", f, err)
		}
		var fin bytes.Buffer
		first, next := pages(rows, 3)
		if _, err := Write(context.Background(), &fin, cols, Options{Format: f}, first, next, func(int) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("%s finish error: %v", f, err)
		}
		if f == XLSX {
			if _, err := excelize.OpenReader(bytes.NewReader(fin.Bytes())); err == nil {
				t.Fatal("an xlsx whose finish failed opens")
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		first, next = pages(rows, 3)
		if _, err := Write(ctx, &bytes.Buffer{}, cols, Options{Format: f}, first, next, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s cancelled: %v", f, err)
		}
	}
}

func TestColName(t *testing.T) {
	t.Parallel()
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA"} {
		if got := colName(i); got != want {
			t.Errorf("colName(%d) = %s, want %s", i, got, want)
		}
	}
}
