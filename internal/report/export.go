package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mailout/internal/csvsafe"
)

// Format of a per-recipient report.
type Format string

const (
	FormatTable Format = "table"
	FormatCSV   Format = "csv"
	FormatJSON  Format = "json"
)

// Writer writes report rows in one format.
type Writer struct {
	f     Format
	csv   *csv.Writer
	tab   *tabwriter.Writer
	json  *json.Encoder
	w     io.Writer
	first bool
	// Raw disables spreadsheet-formula neutralisation in CSV.
	raw bool
}

// NewWriter starts a report in the given format. raw turns off the CSV
// formula neutralisation (only for tools that need the exact text).
func NewWriter(w io.Writer, f Format, raw bool) (*Writer, error) {
	rw := &Writer{f: f, w: w, first: true, raw: raw}
	switch f {
	case FormatCSV:
		rw.csv = csv.NewWriter(w)
		return rw, rw.csv.Write(Columns)
	case FormatTable, "":
		rw.f = FormatTable
		rw.tab = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		_, err := fmt.Fprintln(rw.tab, "LINE\tEMAIL\tSTATE\tCLASS\tREPLY\tVIA\tATTEMPTS")
		return rw, err
	case FormatJSON:
		rw.json = json.NewEncoder(w)
		_, err := io.WriteString(w, "[")
		return rw, err
	default:
		return nil, fmt.Errorf("unknown format %q (table, csv or json)", f)
	}
}

// Write adds one row.
func (rw *Writer) Write(r Row) error {
	switch rw.f {
	case FormatCSV:
		rec := r.fields()
		if !rw.raw {
			for i := range rec {
				rec[i] = csvsafe.Cell(rec[i])
			}
		}
		return rw.csv.Write(rec)
	case FormatJSON:
		if !rw.first {
			if _, err := io.WriteString(rw.w, ","); err != nil {
				return err
			}
		}
		rw.first = false
		if _, err := io.WriteString(rw.w, "\n"); err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = rw.w.Write(b)
		return err
	default:
		reply := ""
		if r.Code != 0 {
			reply = strings.TrimSpace(fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, oneLine(r.Text)))
		} else if r.Text != "" {
			reply = oneLine(r.Text)
		}
		if len(reply) > 70 {
			reply = reply[:67] + "..."
		}
		_, err := fmt.Fprintf(rw.tab, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Line, r.Email, r.State, r.Class, reply, r.Via, r.Attempts)
		return err
	}
}

// Close ends the report.
func (rw *Writer) Close() error {
	switch rw.f {
	case FormatCSV:
		rw.csv.Flush()
		return rw.csv.Error()
	case FormatJSON:
		_, err := io.WriteString(rw.w, "\n]\n")
		return err
	default:
		return rw.tab.Flush()
	}
}
