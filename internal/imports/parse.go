package imports

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// The file formats and CSV encodings an import reads.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"

	EncodingUTF8    = "utf-8"
	EncodingGB18030 = "gb18030"
)

// MaxRows bounds the data rows of one file.
const MaxRows = 200_000

// Table is a file's header and data rows, as text. Row i of Rows is row
// i+2 of the file (the header is row 1).
type Table struct {
	Header   []string
	Rows     [][]string
	Format   string
	Encoding string
}

// errUnreadable wraps why a file could not be read as a table.
var errUnreadable = errors.New("unreadable file")

// SniffFormat tells an XLSX file (a zip archive) from a CSV one; an old
// binary Excel file (.xls) is neither.
func SniffFormat(content []byte) (string, error) {
	switch {
	case bytes.HasPrefix(content, []byte("PK\x03\x04")):
		return FormatXLSX, nil
	case bytes.HasPrefix(content, []byte{0xD0, 0xCF, 0x11, 0xE0}):
		return "", fmt.Errorf("%w: old Excel (.xls) files are not read: save it as .xlsx or CSV", errUnreadable)
	}
	return FormatCSV, nil
}

// NormalizeEncoding maps a stated encoding name to the decoder used:
// GBK and GB2312 are subsets of GB18030, so all three decode as GB18030.
// "" means detect.
func NormalizeEncoding(name string) (string, bool) {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "_", "-")) {
	case "":
		return "", true
	case "utf-8", "utf8":
		return EncodingUTF8, true
	case "gbk", "gb2312", "gb18030", "cp936":
		return EncodingGB18030, true
	}
	return "", false
}

// Parse reads a file as a table: the first sheet of an XLSX workbook, or a
// CSV file in UTF-8 (with or without BOM) or GB18030/GBK, as stated by
// encoding or, when it is "", detected (valid UTF-8 is UTF-8; anything
// else is what Excel in China writes, GB18030).
func Parse(content []byte, encoding string) (*Table, error) {
	format, err := SniffFormat(content)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	t := &Table{Format: format}
	if format == FormatXLSX {
		rows, err = readXLSX(content)
	} else {
		t.Encoding, rows, err = readCSV(content, encoding)
	}
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || allEmpty(rows[0]) {
		return nil, fmt.Errorf("%w: the first row must be the column headers", errUnreadable)
	}
	t.Header = rows[0]
	t.Rows = rows[1:]
	// Trailing empty rows (a spreadsheet's formatting) are no rows.
	for len(t.Rows) > 0 && allEmpty(t.Rows[len(t.Rows)-1]) {
		t.Rows = t.Rows[:len(t.Rows)-1]
	}
	if len(t.Rows) > MaxRows {
		return nil, fmt.Errorf("%w: more than %d rows", errUnreadable, MaxRows)
	}
	return t, nil
}

func allEmpty(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func readCSV(content []byte, encoding string) (string, [][]string, error) {
	enc, ok := NormalizeEncoding(encoding)
	if !ok {
		return "", nil, fmt.Errorf("%w: unknown encoding %q", errUnreadable, encoding)
	}
	if bytes.HasPrefix(content, utf8BOM) {
		content, enc = content[len(utf8BOM):], EncodingUTF8
	}
	if enc == "" {
		enc = EncodingGB18030
		if utf8.Valid(content) {
			enc = EncodingUTF8
		}
	}
	var r io.Reader = bytes.NewReader(content)
	if enc == EncodingGB18030 {
		r = transform.NewReader(r, simplifiedchinese.GB18030.NewDecoder())
	} else if !utf8.Valid(content) {
		return "", nil, fmt.Errorf("%w: the file is not valid UTF-8 (state encoding gbk if it was saved by Excel in China)", errUnreadable)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = false
	cr.Comma = sniffComma(content)
	var rows [][]string
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: %v", errUnreadable, err)
		}
		rows = append(rows, rec)
		if len(rows) > MaxRows+1 {
			return "", nil, fmt.Errorf("%w: more than %d rows", errUnreadable, MaxRows)
		}
	}
	return enc, rows, nil
}

// sniffComma takes the separator the header line uses most: a comma, a
// semicolon (European Excel) or a tab.
func sniffComma(content []byte) rune {
	line := content
	if i := bytes.IndexByte(content, '\n'); i >= 0 {
		line = content[:i]
	}
	best, n := ',', bytes.Count(line, []byte{','})
	for _, c := range []rune{';', '\t'} {
		if m := bytes.Count(line, []byte(string(c))); m > n {
			best, n = c, m
		}
	}
	return best
}

func readXLSX(content []byte) ([][]string, error) {
	f, err := excelize.OpenReader(bytes.NewReader(content), excelize.Options{UnzipSizeLimit: 512 << 20, UnzipXMLSizeLimit: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("%w: not a readable XLSX workbook: %v", errUnreadable, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%w: the workbook has no sheet", errUnreadable)
	}
	rows, err := f.GetRows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreadable, err)
	}
	if len(rows) > MaxRows+1 {
		return nil, fmt.Errorf("%w: more than %d rows", errUnreadable, MaxRows)
	}
	return rows, nil
}
