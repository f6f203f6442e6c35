package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mailout/internal/addr"
	"mailout/internal/csvsafe"
	"mailout/internal/store"
)

// SuppressionColumns are the columns of the suppression list's CSV form,
// which ReadSuppressions reads back. Only address is required on import.
var SuppressionColumns = []string{"address", "reason", "source", "date", "campaign", "code", "enhanced", "text"}

// SuppressionKey is the key an address or a domain is suppressed under:
// the canonical address key (addr.Address.Key: the local part lower-cased,
// the A-label domain), or for "@example.com" the domain as "@" and its
// A-label form, which suppresses every address of the domain.
func SuppressionKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "@") {
		a, err := addr.Parse("x" + s)
		if err != nil {
			return "", fmt.Errorf("domain %q: %w", s, err)
		}
		return "@" + a.Domain, nil
	}
	a, err := addr.Parse(s)
	if err != nil {
		return "", err
	}
	return a.Key(), nil
}

type suppressionJSON struct {
	Address  string `json:"address"`
	Reason   string `json:"reason,omitempty"`
	Source   string `json:"source,omitempty"`
	Date     string `json:"date"`
	Campaign string `json:"campaign,omitempty"`
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text,omitempty"`
}

func suppressionFields(s *store.Suppression) []string {
	code := ""
	if s.Code != 0 {
		code = strconv.Itoa(s.Code)
	}
	return []string{s.Key, s.Reason, s.Source, s.At.UTC().Format(time.RFC3339), s.Campaign, code, s.Enhanced, oneLine(s.Text)}
}

// SuppressionWriter writes the suppression list as a table, CSV or JSON.
type SuppressionWriter struct {
	f     Format
	w     io.Writer
	csv   *csv.Writer
	tab   *tabwriter.Writer
	raw   bool
	first bool
}

// NewSuppressionWriter starts a listing. In CSV, raw keeps cells exactly
// as they are (for an export that is read back); otherwise cells a
// spreadsheet would run as formulas are neutralised, as in reports.
func NewSuppressionWriter(w io.Writer, f Format, raw bool) (*SuppressionWriter, error) {
	sw := &SuppressionWriter{f: f, w: w, raw: raw, first: true}
	switch f {
	case FormatCSV:
		sw.csv = csv.NewWriter(w)
		return sw, sw.csv.Write(SuppressionColumns)
	case FormatTable, "":
		sw.f = FormatTable
		sw.tab = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		_, err := fmt.Fprintln(sw.tab, "ADDRESS\tREASON\tSOURCE\tCAMPAIGN\tREPLY\tDATE")
		return sw, err
	case FormatJSON:
		_, err := io.WriteString(w, "[")
		return sw, err
	}
	return nil, fmt.Errorf("unknown format %q (table, csv or json)", f)
}

// Write adds one entry.
func (sw *SuppressionWriter) Write(s *store.Suppression) error {
	switch sw.f {
	case FormatCSV:
		rec := suppressionFields(s)
		if !sw.raw {
			for i := range rec {
				rec[i] = csvsafe.Cell(rec[i])
			}
		}
		return sw.csv.Write(rec)
	case FormatJSON:
		sep := ","
		if sw.first {
			sep, sw.first = "", false
		}
		b, err := json.Marshal(suppressionJSON{Address: s.Key, Reason: s.Reason, Source: s.Source,
			Date: s.At.UTC().Format(time.RFC3339), Campaign: s.Campaign, Code: s.Code, Enhanced: s.Enhanced, Text: s.Text})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(sw.w, "%s\n%s", sep, b)
		return err
	default:
		reply := ""
		if s.Code != 0 {
			reply = strings.TrimSpace(fmt.Sprintf("%d %s %s", s.Code, s.Enhanced, oneLine(s.Text)))
		}
		if len(reply) > 60 {
			reply = reply[:57] + "..."
		}
		_, err := fmt.Fprintf(sw.tab, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Key, s.Reason, s.Source, s.Campaign, reply,
			s.At.Local().Format(time.DateTime))
		return err
	}
}

// Close ends the listing.
func (sw *SuppressionWriter) Close() error {
	switch sw.f {
	case FormatCSV:
		sw.csv.Flush()
		return sw.csv.Error()
	case FormatJSON:
		_, err := io.WriteString(sw.w, "\n]\n")
		return err
	default:
		return sw.tab.Flush()
	}
}

// LineError is a row of an imported suppression list that was skipped.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrNoAddressColumn is returned when an imported file has no address
// (or email) column in its header row.
var ErrNoAddressColumn = errors.New(`the header row has no "address" or "email" column`)

// ReadSuppressions reads a suppression list in CSV with a header row
// (columns as SuppressionColumns; "email" is taken for "address", other
// columns are ignored). An empty reason becomes defReason, an empty source
// source, an empty date now. Each good row is passed to fn; bad rows are
// returned as *LineError and do not stop the import.
func ReadSuppressions(r io.Reader, defReason, source string, now time.Time, fn func(store.Suppression) error) (bad []error, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "email" {
			h = "address"
		}
		if _, ok := col[h]; !ok {
			col[h] = i
		}
	}
	if _, ok := col["address"]; !ok {
		return nil, ErrNoAddressColumn
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return bad, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, &LineError{Line: pe.StartLine, Err: err})
				continue
			}
			return bad, err
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return csvsafe.Unquote(strings.TrimSpace(rec[i]))
			}
			return ""
		}
		s := store.Suppression{Reason: get("reason"), Source: get("source"), Campaign: get("campaign"),
			Enhanced: get("enhanced"), Text: get("text"), At: now}
		if s.Key, err = SuppressionKey(get("address")); err != nil {
			bad = append(bad, &LineError{Line: line, Err: err})
			continue
		}
		if c := get("code"); c != "" {
			if s.Code, err = strconv.Atoi(c); err != nil {
				bad = append(bad, &LineError{Line: line, Err: fmt.Errorf("code %q is not a number", c)})
				continue
			}
		}
		if d := get("date"); d != "" {
			if s.At, err = parseDate(d); err != nil {
				bad = append(bad, &LineError{Line: line, Err: err})
				continue
			}
		}
		if s.Reason == "" {
			s.Reason = defReason
		}
		if s.Source == "" {
			s.Source = source
		}
		if err := fn(s); err != nil {
			return bad, err
		}
	}
}

// parseDate reads the date column: RFC 3339, or a date and optional time
// in the local zone.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: use 2006-01-02, 2006-01-02 15:04:05 or RFC 3339", s)
}
