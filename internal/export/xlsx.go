package export

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxSheetRows is how many rows a worksheet holds (Excel's limit, header
// included); a longer export continues on further sheets, each with the
// header again.
const MaxSheetRows = 1 << 20

// xlsxWriter writes an Office Open XML workbook straight into the zip
// stream the client receives: each worksheet as its rows come, as inline
// strings (no shared-string table to keep in memory), and the workbook
// parts that list the sheets at the end, when their number is known.
//
// It does not use excelize: excelize's StreamWriter keeps the sheet in a
// temporary file, but File.WriteTo then builds the whole zip in a
// bytes.Buffer (WriteToBuffer), so memory grows with the export and the
// client waits for the last row before the first byte. The format is
// checked by reading exports back with excelize in the tests.
type xlsxWriter struct {
	zw     *zip.Writer
	sheet  *bufio.Writer
	name   string
	sheets int
	rows   int // rows in the current sheet
	max    int // rows per sheet
	header []string
}

func newXLSX(w io.Writer, name string, max int) *xlsxWriter {
	if max <= 1 || max > MaxSheetRows {
		max = MaxSheetRows
	}
	zw := zip.NewWriter(w)
	// The fastest deflate: the sheet XML is repetitive enough that it
	// still shrinks several times, and compression is the export's
	// main CPU cost.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	return &xlsxWriter{zw: zw, name: sheetName(name), max: max}
}

// sheetName makes name a valid worksheet name: at most 31 characters,
// none of []:*?/\.
func sheetName(name string) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, name)
	if r := []rune(name); len(r) > 28 { // room for " 12"
		name = string(r[:28])
	}
	if name == "" {
		name = "Sheet"
	}
	return name
}

const sheetStart = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
	`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
	`<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>` +
	`<sheetData>`

const sheetEnd = `</sheetData></worksheet>`

func (x *xlsxWriter) openSheet() error {
	if x.sheets == 0 {
		// The package's content types and root relationships first, as
		// readers that sniff a zip's first entries expect of a workbook.
		if err := x.part("[Content_Types].xml", contentTypes); err != nil {
			return err
		}
		if err := x.part("_rels/.rels", rootRels); err != nil {
			return err
		}
	}
	x.sheets++
	f, err := x.zw.Create("xl/worksheets/sheet" + strconv.Itoa(x.sheets) + ".xml")
	if err != nil {
		return err
	}
	x.sheet = bufio.NewWriterSize(f, 64<<10)
	x.rows = 0
	if _, err := x.sheet.WriteString(sheetStart); err != nil {
		return err
	}
	return x.write(x.header, true)
}

func (x *xlsxWriter) closeSheet() error {
	if _, err := x.sheet.WriteString(sheetEnd); err != nil {
		return err
	}
	return x.sheet.Flush()
}

func (x *xlsxWriter) row(cells []string) error {
	if x.header == nil {
		x.header = append([]string(nil), cells...)
		return x.openSheet()
	}
	if x.rows >= x.max {
		if err := x.closeSheet(); err != nil {
			return err
		}
		if err := x.openSheet(); err != nil {
			return err
		}
	}
	return x.write(cells, false)
}

// write writes one row: every cell an inline string (never a number or a
// formula, whatever it looks like), an empty cell an empty <c/>, the
// header in the bold style 1.
func (x *xlsxWriter) write(cells []string, header bool) error {
	x.rows++
	b := x.sheet
	b.WriteString(`<row r="`)
	b.WriteString(strconv.Itoa(x.rows))
	b.WriteString(`">`)
	style := ""
	if header {
		style = ` s="1"`
	}
	for i, v := range cells {
		ref := colName(i) + strconv.Itoa(x.rows)
		if v == "" {
			b.WriteString(`<c r="` + ref + `"` + style + `/>`)
			continue
		}
		b.WriteString(`<c r="` + ref + `"` + style + ` t="inlineStr"><is><t xml:space="preserve">`)
		if err := xml.EscapeText(b, []byte(v)); err != nil {
			return err
		}
		b.WriteString(`</t></is></c>`)
	}
	_, err := b.WriteString(`</row>`)
	return err
}

// colName is the column's letters: 0 → A, 25 → Z, 26 → AA.
func colName(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

func (x *xlsxWriter) close() error {
	if x.sheet == nil {
		return fmt.Errorf("export: workbook without a header")
	}
	if err := x.closeSheet(); err != nil {
		return err
	}
	// The parts that list the sheets last, when their number is known.
	for _, p := range [][2]string{
		{"xl/workbook.xml", x.workbook()},
		{"xl/_rels/workbook.xml.rels", x.workbookRels()},
		{"xl/styles.xml", styles},
	} {
		if err := x.part(p[0], p[1]); err != nil {
			return err
		}
	}
	return x.zw.Close()
}

func (x *xlsxWriter) part(name, body string) error {
	f, err := x.zw.Create(name)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, body)
	return err
}

const xmlHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

const rootRels = xmlHead + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
	`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
	`</Relationships>`

// styles: style 0 is the default, style 1 bold (the header row).
const styles = xmlHead + `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
	`<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>` +
	`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
	`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
	`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
	`<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>` +
	`<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>` +
	`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>` +
	`</styleSheet>`

// contentTypes types every .xml part a worksheet by default, so that it
// can be written before the number of sheets is known; the workbook and
// the styles are named.
const contentTypes = xmlHead + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
	`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
	`<Default Extension="xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>` +
	`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
	`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>` +
	`</Types>`

func (x *xlsxWriter) workbook() string {
	var b strings.Builder
	b.WriteString(xmlHead + `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ` +
		`xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>`)
	for i := 1; i <= x.sheets; i++ {
		name := x.name
		if i > 1 {
			name += " " + strconv.Itoa(i)
		}
		b.WriteString(`<sheet name="`)
		_ = xml.EscapeText(&b, []byte(name))
		fmt.Fprintf(&b, `" sheetId="%d" r:id="rId%d"/>`, i, i)
	}
	b.WriteString(`</sheets></workbook>`)
	return b.String()
}

func (x *xlsxWriter) workbookRels() string {
	var b strings.Builder
	b.WriteString(xmlHead + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`)
	for i := 1; i <= x.sheets; i++ {
		fmt.Fprintf(&b, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, i, i)
	}
	b.WriteString(`<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>`)
	b.WriteString(`</Relationships>`)
	return b.String()
}
