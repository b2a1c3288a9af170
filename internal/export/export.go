// Package export writes a list as a file (CSV or XLSX) while it is read,
// page by page, so that memory stays the same whatever the number of rows.
// It knows nothing of HTTP or of the entities: a list declares its columns
// (a header in English and in Chinese, and how to read a cell off the row
// the JSON list shows the caller) and hands over a Pager that walks the
// list's own keyset query. Filters, scope and masking therefore stay the
// list's; export only lays the rows out.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Format is a file format, named by its media type.
type Format string

// The formats an export can be written in.
const (
	CSV  Format = "text/csv"
	XLSX Format = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// Ext is the file name extension of the format.
func (f Format) Ext() string {
	if f == XLSX {
		return "xlsx"
	}
	return "csv"
}

// Column is one column of an export: its header in both languages, and
// the cell of a row.
type Column[T any] struct {
	EN, ZH string
	Value  func(T) string
}

// Header returns the column headers in the wanted language.
func Header[T any](cols []Column[T], chinese bool) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.EN
		if chinese && c.ZH != "" {
			out[i] = c.ZH
		}
	}
	return out
}

// Options say how to write an export.
type Options struct {
	Format Format
	// Chinese selects the Chinese headers.
	Chinese bool
	// BOM (CSV only) starts the file with a UTF-8 byte order mark and
	// makes cells a spreadsheet would evaluate text (see Neutralize): the
	// variant meant for opening in Excel.
	BOM bool
	// Sheet names the XLSX worksheet.
	Sheet string
	// SheetRows is how many rows an XLSX worksheet takes, header included,
	// before the export goes on in another (0: MaxSheetRows).
	SheetRows int
}

// Pager returns the next page of rows; an empty page ends the list.
type Pager[T any] func(ctx context.Context) ([]T, error)

// ErrIncomplete wraps the error that stopped an export after its start.
var ErrIncomplete = errors.New("export incomplete")

// Write writes the header and every row next yields to w, in o's format,
// and returns how many rows it wrote. first is a page already read (the
// caller reads it before answering, so that a bad filter is still a
// clean error answer); next yields the pages after it. The file is
// complete only if Write returns nil: an XLSX cut short does not open.
// Before writing the file's end it calls finish, if given, with the row
// count; an error from finish leaves the file incomplete (an export whose
// audit entry could not be written must not be delivered whole).
func Write[T any](ctx context.Context, w io.Writer, cols []Column[T], o Options, first []T, next Pager[T], finish func(rows int) error) (int, error) {
	var rw rowWriter
	switch o.Format {
	case CSV:
		rw = newCSV(w, o.BOM)
	case XLSX:
		rw = newXLSX(w, o.Sheet, o.SheetRows)
	default:
		return 0, fmt.Errorf("export: unknown format %q", o.Format)
	}
	if err := rw.row(Header(cols, o.Chinese)); err != nil {
		return 0, err
	}
	cells := make([]string, len(cols))
	n := 0
	page := first
	for len(page) > 0 {
		for _, r := range page {
			for i, c := range cols {
				cells[i] = c.Value(r)
			}
			if err := rw.row(cells); err != nil {
				return n, err
			}
			n++
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var err error
		if page, err = next(ctx); err != nil {
			return n, err
		}
	}
	if finish != nil {
		if err := finish(n); err != nil {
			return n, err
		}
	}
	return n, rw.close()
}

// rowWriter lays rows out in one format.
type rowWriter interface {
	row(cells []string) error
	close() error
}

// Cell helpers: how values are written, the same in every export.

// Text is an optional string: empty when absent.
func Text(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Time is an instant as the JSON lists write it: RFC 3339 in UTC with
// the fraction of a second it has.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TimePtr is an optional instant: empty when absent.
func TimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return Time(*t)
}

// Bool is true or false, as in JSON.
func Bool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TagSeparator joins a list of tags in one cell.
const TagSeparator = "; "

// Tags joins tags with TagSeparator.
func Tags(tags []string) string { return strings.Join(tags, TagSeparator) }

// FileName is the download name of an export of noun made at t:
// leads-20261207T162718Z.csv.
func FileName(noun string, f Format, t time.Time) string {
	return noun + "-" + t.UTC().Format("20060102T150405Z") + "." + f.Ext()
}
