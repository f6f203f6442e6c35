// Package recipient turns a recipient list (a CSV file exported from a
// spreadsheet) into validated, de-duplicated recipients with their merge
// fields. It is the first step of the data flow: a front end hands Rows the
// file or the uploaded bytes, and the campaign service ranges over it,
// storing every accepted row as a recipient (checked against suppressions)
// and reporting every rejected row with its line number and a reason a
// person can act on. Addresses are parsed by internal/addr.
//
// The reader streams: memory stays constant in the number of rows except
// for the de-duplication index (a 16-byte key hash and the line number per
// accepted address, see dedupe.go). Without MaxRecordBytes a single row is
// read whole, however long (a file of zero bytes without a line break never
// ends), so every caller should set it.
package recipient

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"unicode"
	"unicode/utf8"

	"mailout/internal/addr"
	"mailout/internal/csvsafe"
)

// Recipient is one accepted row.
type Recipient struct {
	Line    int // line number where the row starts (the header is line 1)
	Address addr.Address
	// Fields holds every column by its header name as written (trimmed),
	// the email column included; values are trimmed of surrounding spaces.
	Fields map[string]string
	// Columns are the header's names in file order, the keys of Fields;
	// every row of a file shares the one slice, which must not be changed.
	Columns []string
}

// RowError is one rejected row. Reason is one of:
//
//	"invalid address: <addr.Error reason>"
//	"duplicate of line N"
//	"missing email"
//	"wrong number of fields: 3, expected 4"
//	"not UTF-8: save the file as UTF-8"
//	"control character U+0000 in column \"name\""
//	"bad quotes: <encoding/csv message>"
type RowError struct {
	Line   int
	Reason string
	// Value is the row's email cell (or "" when the row has none), made safe
	// to print: invalid UTF-8 and control characters are replaced by U+FFFD
	// and it is cut to addr.MaxInput octets.
	Value string
	// Err is ErrFieldTooLarge for a row rejected for a field over
	// Options.MaxFieldBytes, else nil.
	Err error
}

func (e RowError) Unwrap() error { return e.Err }

func (e RowError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s (%q)", e.Line, e.Reason, e.Value)
}

// Stats counts the data rows of a file. Empty rows are not counted;
// Rows = Imported + Invalid + Duplicates.
type Stats struct {
	Rows, Imported, Invalid, Duplicates int
}

// Options tunes Read. The zero value detects the delimiter and has no caps.
type Options struct {
	Delimiter rune  // 0 = detect from the header line among ',', ';', '\t'
	MaxRows   int   // 0 = no cap; over it, Read stops with ErrTooManyRows
	MaxBytes  int64 // 0 = no cap; over it, Read stops with ErrTooLarge
	// MaxRecordBytes caps one row as written in the file, all its lines
	// (a quoted field may span several) and the blank lines before it;
	// 0 = no cap. Over it, Read stops with ErrRecordTooLarge after reading
	// at most the cap and one buffer more, so memory stays bounded
	// whatever the input.
	MaxRecordBytes int
	// MaxFieldBytes caps one field (cell); 0 = no cap. A longer field in
	// the header stops Read; in a data row it rejects the row
	// (RowError.Err is ErrFieldTooLarge) and the import goes on.
	MaxFieldBytes int
}

// Errors a caller may want to tell apart; the returned error wraps them with
// the limit that was hit.
var (
	ErrTooManyRows    = errors.New("too many rows")
	ErrTooLarge       = errors.New("file too large")
	ErrRecordTooLarge = errors.New("row too long")
	ErrFieldTooLarge  = errors.New("field too long")
)

// FileError.Line and RowError.Line count lines from 1, as an editor does.

// FileError is a problem with the file as a whole; Reason says what to fix.
type FileError struct {
	Line   int // 0 when it is not about one line
	Reason string
	Err    error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("recipient file, line %d: %s", e.Line, e.Reason)
	}
	return "recipient file: " + e.Reason
}

func (e *FileError) Unwrap() error { return e.Err }

// emailHeaders are the header names (lower-cased, trimmed) taken as the
// address column.
var emailHeaders = map[string]bool{
	"email": true, "e-mail": true, "mail": true, "email address": true,
	"e-mail address": true, "email_address": true, "correo": true,
	"correo electrónico": true, "correo electronico": true,
}

// IsEmailColumn reports whether a header name (in any case, with spaces
// around) is taken as the address column.
func IsEmailColumn(name string) bool {
	return emailHeaders[strings.ToLower(strings.TrimSpace(name))]
}

// Read streams recipients from r: ok is called for every good row, bad for
// every rejected row, in file order. If ok returns an error, Read stops and
// returns it as is; bad may be nil. A file-level problem (no header, no email column, not
// UTF-8 text, over the caps, an I/O error) returns a *FileError that says
// what to fix; Stats always counts the rows handled so far. It is Rows for
// callers that prefer callbacks.
func Read(ctx context.Context, r io.Reader, opt Options, ok func(Recipient) error, bad func(RowError)) (Stats, error) {
	var st Stats
	for rec, err := range Rows(ctx, r, opt, &st) {
		var re RowError
		switch {
		case errors.As(err, &re):
			if bad != nil {
				bad(re)
			}
		case err != nil:
			return st, err
		default:
			if err := ok(*rec); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// Rows streams the recipients of r as an iterator, in file order, reading
// only as far as the caller iterates: an accepted row comes as (r, nil); a
// rejected row as (nil, RowError), and the rows after it follow; a
// file-level problem (no header, no email column, not UTF-8 text, over the
// caps, an I/O error) as (nil, *FileError), or ctx's error, and ends the
// sequence. st, when not nil, counts the rows handled so far. A caller
// that stops early (break) stops the reading there.
func Rows(ctx context.Context, r io.Reader, opt Options, st *Stats) iter.Seq2[*Recipient, error] {
	if st == nil {
		st = &Stats{}
	}
	return func(yield func(*Recipient, error) bool) {
		if err := readRows(ctx, r, opt, st, yield); err != nil {
			yield(nil, err)
		}
	}
}

// readRows is Rows' body; it returns the error that ends the sequence, or nil
// at the end of the file or when yield asked to stop.
func readRows(ctx context.Context, r io.Reader, opt Options, stp *Stats, yield func(*Recipient, error) bool) error {
	if opt.MaxBytes > 0 {
		r = &capReader{r: r, left: opt.MaxBytes, limit: opt.MaxBytes}
	}
	var rc *recordCap
	if opt.MaxRecordBytes > 0 {
		rc = &recordCap{r: r, limit: int64(opt.MaxRecordBytes) + readBuffer}
		r = rc
	}
	br := bufio.NewReaderSize(r, readBuffer)
	// rows tracks where the row being read starts, for the record cap and
	// for the line a read error is reported on.
	rows := &rowTracker{br: br, rc: rc, max: opt.MaxRecordBytes, next: 1}
	if err := skipBOM(br); err != nil {
		return err
	}
	delim := opt.Delimiter
	switch {
	case delim == '"' || delim == '\r' || delim == '\n' || delim == utf8.RuneError || !utf8.ValidRune(delim):
		return &FileError{Reason: fmt.Sprintf("%q cannot be a delimiter: use ',', ';' or tab", delim)}
	case delim == 0:
		var err error
		if delim, err = detectDelimiter(br); err != nil {
			return err
		}
	}
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // ragged rows are row errors, checked below
	cr.ReuseRecord = true
	rows.cr = cr

	h, err := readHeader(cr, rows, opt.MaxFieldBytes)
	if err != nil {
		return err
	}

	seen := newDedupe()
	for {
		if stp.Rows%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err := rows.done(rec, err); err != nil {
			return err
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if err := count(stp, opt); err != nil {
				return err
			}
			stp.Invalid++
			if !yield(nil, RowError{Line: pe.StartLine, Reason: "bad quotes: " + pe.Err.Error() + quoteHint}) {
				return nil
			}
			continue
		}
		if err != nil {
			return fileIOError(err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue // a line of only delimiters, as spreadsheets export
		}
		if err := count(stp, opt); err != nil {
			return err
		}
		var value string
		if h.email < len(rec) {
			value = printable(strings.TrimSpace(rec[h.email]))
		}
		if reason, err := h.checkRow(rec, opt.MaxFieldBytes); reason != "" {
			stp.Invalid++
			if !yield(nil, RowError{Line: line, Reason: reason, Value: value, Err: err}) {
				return nil
			}
			continue
		}
		// A spreadsheet-safe export (mailout's own list export, among
		// others) puts a single quote in front of a cell a spreadsheet
		// would run as a formula; spreadsheets themselves never write it
		// to a CSV file. Taken off, such a file reads back as it was.
		for i := range rec {
			rec[i] = csvsafe.Unquote(strings.TrimSpace(rec[i]))
		}
		raw := rec[h.email]
		if raw == "" {
			stp.Invalid++
			if !yield(nil, RowError{Line: line, Reason: "missing email"}) {
				return nil
			}
			continue
		}
		a, err := addr.Parse(raw)
		if err != nil {
			reason := err.Error()
			var ae *addr.Error
			if errors.As(err, &ae) {
				reason = ae.Reason
			}
			stp.Invalid++
			if !yield(nil, RowError{Line: line, Reason: "invalid address: " + reason, Value: value}) {
				return nil
			}
			continue
		}
		if first, dup := seen.add(a.Key(), line); dup {
			stp.Duplicates++
			if !yield(nil, RowError{Line: line, Reason: fmt.Sprintf("duplicate of line %d", first), Value: value}) {
				return nil
			}
			continue
		}
		fields := make(map[string]string, len(h.names))
		for i, name := range h.names {
			fields[name] = rec[i] // trimmed and unquoted above
		}
		stp.Imported++
		if !yield(&Recipient{Line: line, Address: a, Fields: fields, Columns: h.names}, nil) {
			return nil
		}
	}
}

// quoteHint follows the encoding/csv message of a quoting error.
const quoteHint = `: a cell with quotes in it must be quoted and its quotes doubled (RFC 4180 §2), like """john doe""@example.com"`

// count adds a row and checks MaxRows.
func count(st *Stats, opt Options) error {
	if opt.MaxRows > 0 && st.Rows >= opt.MaxRows {
		return &FileError{
			Reason: fmt.Sprintf("more than %d rows: split the file or raise the row limit", opt.MaxRows),
			Err:    ErrTooManyRows,
		}
	}
	st.Rows++
	return nil
}

// header is the parsed header line.
type header struct {
	names []string
	email int // index of the address column
}

func readHeader(cr *csv.Reader, rows *rowTracker, maxField int) (header, error) {
	rec, err := cr.Read()
	if err != io.EOF {
		if err := rows.done(rec, err); err != nil {
			return header{}, err
		}
	}
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return header{}, &FileError{Reason: "the file is empty: the first line must be a header such as email,first_name"}
	case errors.As(err, &pe):
		return header{}, &FileError{Line: pe.StartLine, Reason: "bad quotes in the header line: " + pe.Err.Error(), Err: err}
	case err != nil:
		return header{}, fileIOError(err)
	}
	line, _ := cr.FieldPos(0)
	h := header{names: make([]string, len(rec)), email: -1}
	byLower := make(map[string]int, len(rec))
	for i, raw := range rec {
		if maxField > 0 && len(raw) > maxField {
			return header{}, &FileError{Line: line, Reason: fmt.Sprintf("column %d of the header line is %d bytes long, over the cap of %d bytes on one field", i+1, len(raw), maxField), Err: ErrFieldTooLarge}
		}
		if !utf8.ValidString(raw) {
			return header{}, &FileError{Line: line, Reason: "the header line is not UTF-8 text: save the file as UTF-8 (in Excel: \"CSV UTF-8\")"}
		}
		if strings.ContainsRune(raw, '\r') {
			return header{}, &FileError{Line: line, Reason: "the file uses old Mac line endings (CR only): save it with Windows (CRLF) or Unix (LF) line endings"}
		}
		if r, bad := controlRune(raw); bad {
			return header{}, &FileError{Line: line, Reason: fmt.Sprintf("control character %U in the header line: this does not look like a text CSV file", r)}
		}
		name := strings.TrimSpace(raw)
		if name == "" {
			return header{}, &FileError{Line: line, Reason: fmt.Sprintf("column %d has no name in the header line: name it or delete the column", i+1)}
		}
		low := strings.ToLower(name)
		if j, dup := byLower[low]; dup {
			return header{}, &FileError{Line: line, Reason: fmt.Sprintf("columns %d and %d are both named %q: rename one", j+1, i+1, name)}
		}
		byLower[low] = i
		h.names[i] = name
		if emailHeaders[low] {
			if h.email >= 0 {
				return header{}, &FileError{Line: line, Reason: fmt.Sprintf("two address columns, %q and %q: keep one", h.names[h.email], name)}
			}
			h.email = i
		}
	}
	if h.email < 0 {
		for _, name := range h.names {
			if strings.Contains(name, "@") {
				return header{}, &FileError{Line: line, Reason: "the first line looks like data, not a header: add a first line with the column names, such as email,first_name"}
			}
		}
		return header{}, &FileError{Line: line, Reason: "no email column: name the address column \"email\" in the header line"}
	}
	return h, nil
}

// checkRow returns why a row cannot be used, or "", and ErrFieldTooLarge
// when that is why. It never shifts columns: a row with a different number
// of fields is rejected.
func (h header) checkRow(rec []string, maxField int) (string, error) {
	if len(rec) != len(h.names) {
		return fmt.Sprintf("wrong number of fields: %d, expected %d", len(rec), len(h.names)), nil
	}
	for i, v := range rec {
		if maxField > 0 && len(v) > maxField {
			return fmt.Sprintf("column %q is %d bytes long, over the cap of %d bytes on one field", h.names[i], len(v), maxField), ErrFieldTooLarge
		}
		if !utf8.ValidString(v) {
			return "not UTF-8: save the file as UTF-8", nil
		}
		// Merge values end up in headers and bodies; only tab and
		// newline (inside quoted fields) are text.
		if r, bad := controlRune(v); bad {
			return fmt.Sprintf("control character %U in column %q", r, h.names[i]), nil
		}
	}
	return "", nil
}

// controlRune reports the first control character of s other than tab and
// newline. s must be valid UTF-8.
func controlRune(s string) (rune, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			continue
		}
		if c < utf8.RuneSelf {
			if c == '\t' || c == '\n' {
				continue
			}
			return rune(c), true
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsControl(r) { // C1 controls U+0080-U+009F
			return r, true
		}
		i += n - 1
	}
	return 0, false
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// printable makes a cell safe to show in a report or a log.
func printable(s string) string {
	if len(s) > addr.MaxInput {
		s = s[:addr.MaxInput]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func fileIOError(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return &FileError{Reason: err.Error() + ": split the file or raise the size limit", Err: err}
	}
	return &FileError{Reason: "cannot read the file: " + err.Error(), Err: err}
}
