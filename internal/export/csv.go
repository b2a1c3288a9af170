package export

import (
	"encoding/csv"
	"io"
)

// bom is the UTF-8 byte order mark Excel needs to read a CSV as UTF-8.
const bom = "\uFEFF"

type csvWriter struct {
	w       *csv.Writer
	out     io.Writer
	excel   bool
	started bool
	scratch []string
}

// newCSV writes RFC 4180 CSV (fields quoted when needed, lines ending in
// LF, so that a value's own CR LF survives unchanged). excel adds the BOM
// and neutralizes formulas.
func newCSV(w io.Writer, excel bool) *csvWriter {
	return &csvWriter{w: csv.NewWriter(w), out: w, excel: excel}
}

func (c *csvWriter) row(cells []string) error {
	if !c.started {
		c.started = true
		if c.excel {
			if _, err := io.WriteString(c.out, bom); err != nil {
				return err
			}
		}
	}
	if c.excel {
		c.scratch = append(c.scratch[:0], cells...)
		for i, v := range c.scratch {
			c.scratch[i] = Neutralize(v)
		}
		cells = c.scratch
	}
	// csv.Writer buffers; once a flush to out fails, every Write says so.
	return c.w.Write(cells)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	return c.w.Error()
}

// Neutralize makes a cell that a spreadsheet would evaluate as a formula
// text, by prefixing an apostrophe: a value starting with =, +, -, @, tab
// or carriage return (OWASP's advice on CSV injection). A lead's name
// typed into a web form must not run in the sales manager's Excel.
func Neutralize(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}
