// Package audience is the lists service: lists of subscribers kept across
// campaigns, for the command line's "mailout lists" and the web app.
//
// Place in the flow: a CSV file goes through the same reader as a
// campaign's list (recipient.Rows, with the caller's caps) into a stored
// list (Import: new addresses are added, known ones updated, bad rows
// reported with their line); a person edits one subscriber at a time
// (Add, Update: the address and fields are checked by that same reader);
// Export writes the list back as CSV; and Rows hands the list to
// campaign.Service.Create as a campaign's recipients, where the
// suppression list applies as it does to a file.
package audience

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"

	"mailout/internal/addr"
	"mailout/internal/csvsafe"
	"mailout/internal/readahead"
	"mailout/internal/recipient"
	"mailout/internal/store"
)

// Service manages the lists of one store.
type Service struct {
	st store.Store
}

// New returns the lists service over st (which the caller closes).
func New(st store.Store) *Service { return &Service{st: st} }

// MaxFieldBytes caps one field typed into Add or Update, as the command
// line's --max-field-bytes caps one of a file by default.
const MaxFieldBytes = 64 << 10

// rowsChunk is how many subscribers Rows reads per read transaction.
const rowsChunk = 1000

// InvalidError is a list name, an address or a field that is refused:
// Reason says why in the words the CSV import uses for a row.
type InvalidError struct {
	Reason string
	Err    error // the reader's error, when there is one
}

func (e *InvalidError) Error() string { return e.Reason }
func (e *InvalidError) Unwrap() error { return e.Err }

// Create makes a new, empty list; store.ErrExists when the name is taken.
func (s *Service) Create(ctx context.Context, name string) (*store.List, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	l := &store.List{Name: name}
	if err := s.st.CreateList(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// checkName trims a list name and refuses an empty one or one with
// control characters.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &InvalidError{Reason: "a list needs a name"}
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", &InvalidError{Reason: "a list name cannot hold control characters"}
	}
	return name, nil
}

// Get returns one list with its columns and number of subscribers.
func (s *Service) Get(ctx context.Context, id int64) (*store.List, error) { return s.st.List(ctx, id) }

// ByName finds a list by its name; store.ErrNotFound when there is none.
func (s *Service) ByName(ctx context.Context, name string) (*store.List, error) {
	all, err := s.st.Lists(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range all {
		if l.Name == name {
			return &l, nil
		}
	}
	return nil, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
}

// All returns every list by name, with their numbers of subscribers.
func (s *Service) All(ctx context.Context) ([]store.List, error) { return s.st.Lists(ctx) }

// Rename gives a list a new name; store.ErrExists when another has it.
func (s *Service) Rename(ctx context.Context, id int64, name string) error {
	name, err := checkName(name)
	if err != nil {
		return err
	}
	return s.st.RenameList(ctx, id, name)
}

// Delete deletes a list and its subscribers; campaigns made from it keep
// their recipients.
func (s *Service) Delete(ctx context.Context, id int64) error { return s.st.DeleteList(ctx, id) }

// Subscribers returns the subscribers f selects, in id order (a page of
// them with f.Limit; every one without).
func (s *Service) Subscribers(ctx context.Context, listID int64, f store.SubscriberFilter) ([]store.Subscriber, error) {
	var out []store.Subscriber
	err := s.st.Subscribers(ctx, listID, f, func(sub *store.Subscriber) error {
		out = append(out, *sub)
		return nil
	})
	return out, err
}

// Subscriber returns one subscriber of the list.
func (s *Service) Subscriber(ctx context.Context, listID, id int64) (*store.Subscriber, error) {
	return s.st.Subscriber(ctx, listID, id)
}

// DeleteSubscriber deletes one subscriber of the list.
func (s *Service) DeleteSubscriber(ctx context.Context, listID, id int64) error {
	return s.st.DeleteSubscriber(ctx, listID, id)
}

// ImportResult is what an import did.
type ImportResult struct {
	// Added and Updated count the rows stored: new addresses, and
	// addresses already in the list whose fields were replaced.
	Added, Updated int
	// Rejected are the rows left out, with their line and reason.
	Rejected []recipient.RowError
}

// Import adds the rows of a CSV file to the list in one transaction, read
// by the same rules and caps (opt) as a campaign's list: a row whose
// address is already in the list updates it, a bad row is left out and
// listed in the result with its line and reason, and the rest are stored.
// A problem with the file as a whole (a cap exceeded, a header that is not
// UTF-8 text, no email column, an unreadable file) stores nothing and is
// returned as the *recipient.FileError; a list that does not exist is
// store.ErrNotFound.
func (s *Service) Import(ctx context.Context, listID int64, r io.Reader, source string, opt recipient.Options) (*ImportResult, error) {
	res := &ImportResult{}
	next, stop := readahead.Pull2(recipient.Rows(ctx, r, opt, nil))
	defer stop()
	added, updated, err := s.st.ImportSubscribers(ctx, listID, source, true, func() (*store.NewRecipient, error) {
		for {
			rec, err, ok := next()
			if !ok {
				return nil, nil
			}
			var re recipient.RowError
			if errors.As(err, &re) {
				res.Rejected = append(res.Rejected, re)
				continue
			}
			if err != nil {
				return nil, err
			}
			return newRecipient(rec), nil
		}
	})
	var fe *recipient.FileError
	if errors.As(err, &fe) {
		return nil, fe
	}
	if err != nil {
		return nil, err
	}
	res.Added, res.Updated = added, updated
	return res, nil
}

func newRecipient(r *recipient.Recipient) *store.NewRecipient {
	return &store.NewRecipient{Line: r.Line, Email: r.Address.String(), Domain: r.Address.Domain,
		Key: r.Address.Key(), Fields: r.Fields, Columns: r.Columns}
}

// Export writes the list as CSV: a header of the list's columns in order,
// then one row per subscriber in id order. A cell a spreadsheet would run
// as a formula (= + - @, tab or CR first: the fields come from sign-up
// forms and imported files) gets a leading single quote, which Import
// takes off again, so importing the file gives the same list; raw writes
// every cell exactly as stored, for tools that read it back otherwise.
// The header's names are always quoted, so that the import detects the
// comma as the delimiter even when a name holds a semicolon or a tab.
func (s *Service) Export(ctx context.Context, listID int64, w io.Writer, raw bool) error {
	l, err := s.st.List(ctx, listID)
	if err != nil {
		return err
	}
	cols := l.Columns
	email := emailColumn(cols)
	if email < 0 {
		cols, email = append(slices.Clone(cols), "email"), len(cols)
	}
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		// RFC 4180 §2: a field in double quotes, an inner quote doubled.
		b.WriteString(`"` + strings.ReplaceAll(c, `"`, `""`) + `"`)
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	err = s.st.Subscribers(ctx, listID, store.SubscriberFilter{}, func(sub *store.Subscriber) error {
		for i, c := range cols {
			rec[i] = sub.Fields[c]
		}
		if rec[email] == "" {
			rec[email] = sub.Email
		}
		if !raw {
			for i, v := range rec {
				rec[i] = csvsafe.Cell(v)
			}
		}
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// emailColumn is the index of the address column among cols, or -1.
func emailColumn(cols []string) int {
	return slices.IndexFunc(cols, recipient.IsEmailColumn)
}

// Rows yields the list's subscribers as a campaign's recipients, in id
// order: Line is the position in the list (from 1), Address is parsed
// back from the stored email, Fields are the merge fields. It is the
// source campaign.Service.Create takes:
//
//	svc.Create(ctx, draft, aud.Rows(ctx, id), nil)
//
// Suppressed subscribers are yielded too: the store marks them suppressed
// as the campaign is imported. The list is read rowsChunk subscribers per
// read, so that memory stays constant and no read is held open while the
// campaign's import writes to the same database.
func (s *Service) Rows(ctx context.Context, listID int64) iter.Seq2[*recipient.Recipient, error] {
	return func(yield func(*recipient.Recipient, error) bool) {
		l, err := s.st.List(ctx, listID)
		if err != nil {
			yield(nil, err)
			return
		}
		cols := l.Columns
		var after int64
		line := 0
		page := make([]store.Subscriber, 0, rowsChunk)
		for {
			page = page[:0]
			err := s.st.Subscribers(ctx, listID, store.SubscriberFilter{AfterID: after, Limit: rowsChunk}, func(sub *store.Subscriber) error {
				page = append(page, *sub)
				return nil
			})
			if err != nil {
				yield(nil, err)
				return
			}
			for _, sub := range page {
				line++
				a, err := addr.Parse(sub.Email)
				if err != nil {
					reason := err.Error()
					var ae *addr.Error
					if errors.As(err, &ae) {
						reason = ae.Reason
					}
					if !yield(nil, recipient.RowError{Line: line, Reason: "invalid address: " + reason, Value: sub.Email}) {
						return
					}
					continue
				}
				if !yield(&recipient.Recipient{Line: line, Address: a, Fields: sub.Fields, Columns: cols}, nil) {
					return
				}
			}
			if len(page) < rowsChunk {
				return
			}
			after = page[len(page)-1].ID
		}
	}
}

// Suppressed calls fn, in id order, for every subscriber of the list that
// is on the suppression list (by its address or its domain) with the
// entry that suppresses it: the addresses a campaign made from the list
// will not send to.
func (s *Service) Suppressed(ctx context.Context, listID int64, fn func(*store.Subscriber, *store.Suppression) error) error {
	if _, err := s.st.List(ctx, listID); err != nil {
		return err
	}
	entries := map[string]*store.Suppression{}
	if err := s.st.Suppressions(ctx, func(e *store.Suppression) error {
		c := *e
		entries[e.Key] = &c
		return nil
	}); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	return s.st.Subscribers(ctx, listID, store.SubscriberFilter{}, func(sub *store.Subscriber) error {
		e := entries[sub.Key]
		if e == nil {
			e = entries["@"+sub.Domain]
		}
		if e == nil {
			return nil
		}
		return fn(sub, e)
	})
}

// Add stores one subscriber typed into a form: the address and fields are
// checked as a row of a CSV import is, and an address already in the list
// updates that subscriber (added is false). A refused address or field is
// an *InvalidError.
func (s *Service) Add(ctx context.Context, listID int64, email string, fields map[string]string, source string) (added bool, err error) {
	l, err := s.st.List(ctx, listID)
	if err != nil {
		return false, err
	}
	r, err := checkRow(ctx, l.Columns, email, fields)
	if err != nil {
		return false, err
	}
	n, _, err := s.st.ImportSubscribers(ctx, listID, source, false, func() (*store.NewRecipient, error) {
		nr := r
		r = nil
		return nr, nil
	})
	return n == 1, err
}

// Update replaces one subscriber's address and fields, checked as a row
// of a CSV import is; a refused one is an *InvalidError, and an address
// that another subscriber of the list has is store.ErrExists.
func (s *Service) Update(ctx context.Context, listID, id int64, email string, fields map[string]string) (*store.Subscriber, error) {
	l, err := s.st.List(ctx, listID)
	if err != nil {
		return nil, err
	}
	sub, err := s.st.Subscriber(ctx, listID, id)
	if err != nil {
		return nil, err
	}
	r, err := checkRow(ctx, l.Columns, email, fields)
	if err != nil {
		return nil, err
	}
	sub.Email, sub.Domain, sub.Key, sub.Fields = r.Email, r.Domain, r.Key, r.Fields
	if err := s.st.UpdateSubscriber(ctx, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// checkRow checks an address and fields typed into a form by the rules of
// a CSV import, by reading them as a one-row CSV file through the same
// reader: the list's columns (the new names of fields after them, sorted;
// an "email" column when the list has no address column yet) and one row
// of the values, the address in the address column.
func checkRow(ctx context.Context, columns []string, email string, fields map[string]string) (*store.NewRecipient, error) {
	cols := slices.Clone(columns)
	email0 := emailColumn(cols)
	if email0 < 0 {
		cols, email0 = append(cols, "email"), len(cols)
	}
	var extra []string
	for k := range fields {
		if !slices.Contains(cols, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	cols = append(cols, extra...)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = fields[c]
	}
	row[email0] = email
	var b strings.Builder
	cw := csv.NewWriter(&b)
	if err := cw.Write(cols); err != nil {
		return nil, err
	}
	if err := cw.Write(row); err != nil {
		return nil, err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, err
	}
	opt := recipient.Options{Delimiter: ',', MaxRows: 1, MaxFieldBytes: MaxFieldBytes}
	for rec, err := range recipient.Rows(ctx, strings.NewReader(b.String()), opt, nil) {
		var (
			re recipient.RowError
			fe *recipient.FileError
		)
		switch {
		case errors.As(err, &re):
			return nil, &InvalidError{Reason: re.Reason, Err: re}
		case errors.As(err, &fe):
			return nil, &InvalidError{Reason: fe.Reason, Err: fe}
		case err != nil:
			return nil, err
		}
		return newRecipient(rec), nil
	}
	// The row was blank: every cell, the address included, empty.
	return nil, &InvalidError{Reason: "missing email"}
}
