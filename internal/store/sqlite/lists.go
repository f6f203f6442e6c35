package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mailout/internal/store"
)

// CreateList stores a new, empty list; ErrExists when the name is taken.
func (db *DB) CreateList(ctx context.Context, l *store.List) error {
	if l == nil || l.Name == "" {
		return errors.New("sqlite: create list: a name is required")
	}
	created := now()
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := listNameFree(ctx, tx, db.q.listNameTaken, l.Name, 0); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, db.q.listInsert).ExecContext(ctx,
			sql.Named("name", l.Name), sql.Named("created_at", ms(created)))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create list %q: %w", l.Name, err)
	}
	l.ID, l.CreatedAt, l.Columns, l.Subscribers = id, created, nil, 0
	return nil
}

// listNameFree returns store.ErrExists when a list other than id has name.
func listNameFree(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, name string, id int64) error {
	var one int
	err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, sql.Named("name", name), sql.Named("list", id)).Scan(&one)
	switch {
	case err == nil:
		return store.ErrExists
	case errors.Is(err, sql.ErrNoRows):
		return nil
	}
	return err
}

// List returns one list with its columns and number of subscribers.
func (db *DB) List(ctx context.Context, id int64) (*store.List, error) {
	l, err := scanList(db.q.listGet.QueryRowContext(ctx, sql.Named("list", id)))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %d: %w", id, err)
	}
	return l, nil
}

// Lists returns every list by name.
func (db *DB) Lists(ctx context.Context) ([]store.List, error) {
	rows, err := db.q.listsList.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lists: %w", err)
	}
	defer rows.Close()
	var out []store.List
	for rows.Next() {
		l, err := scanList(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: lists: %w", err)
		}
		out = append(out, *l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: lists: %w", err)
	}
	return out, nil
}

// scanList reads the columns of queries/list_get.sql.
func scanList(s scanner) (*store.List, error) {
	var (
		l       store.List
		created int64
		columns string
	)
	if err := s.Scan(&l.ID, &l.Name, &created, &columns, &l.Subscribers); err != nil {
		return nil, err
	}
	l.CreatedAt = fromMS(created)
	var err error
	if l.Columns, err = decodeColumns(columns); err != nil {
		return nil, fmt.Errorf("list %d: %w", l.ID, err)
	}
	return &l, nil
}

func decodeColumns(s string) ([]string, error) {
	var cols []string
	if err := json.Unmarshal([]byte(s), &cols); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	return cols, nil
}

// RenameList gives the list a new name; ErrExists when another list has it.
func (db *DB) RenameList(ctx context.Context, id int64, name string) error {
	if name == "" {
		return fmt.Errorf("sqlite: rename list %d: a name is required", id)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := listNameFree(ctx, tx, db.q.listNameTaken, name, id); err != nil {
			return err
		}
		n, err := execCount(ctx, tx, db.q.listRename, sql.Named("list", id), sql.Named("name", name))
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: rename list %d to %q: %w", id, name, err)
	}
	return nil
}

// DeleteList deletes the list and, by the foreign key's cascade, its
// subscribers, in one transaction.
func (db *DB) DeleteList(ctx context.Context, id int64) error {
	if err := db.execOne(ctx, db.q.listDelete, sql.Named("list", id)); err != nil {
		return fmt.Errorf("sqlite: delete list %d: %w", id, err)
	}
	return nil
}

// columnSet is a list's columns while they grow in a write transaction.
type columnSet struct {
	names   []string
	has     map[string]bool
	changed bool
}

func loadColumns(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, list int64) (*columnSet, error) {
	var s string
	err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, sql.Named("list", list)).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	names, err := decodeColumns(s)
	if err != nil {
		return nil, err
	}
	c := &columnSet{names: names, has: make(map[string]bool, len(names))}
	for _, n := range names {
		c.has[n] = true
	}
	return c, nil
}

// add appends the names of fields the set lacks: first in the order of
// order, then the rest sorted.
func (c *columnSet) add(fields map[string]string, order []string) {
	if len(fields) == 0 {
		return
	}
	fresh := false
	for k := range fields {
		if !c.has[k] {
			fresh = true
			break
		}
	}
	if !fresh {
		return
	}
	for _, k := range order {
		if _, ok := fields[k]; ok && !c.has[k] {
			c.has[k] = true
			c.names = append(c.names, k)
		}
	}
	var rest []string
	for k := range fields {
		if !c.has[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		c.has[k] = true
		c.names = append(c.names, k)
	}
	c.changed = true
}

// save writes the columns back when they grew.
func (c *columnSet) save(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, list int64) error {
	if !c.changed {
		return nil
	}
	b, err := json.Marshal(c.names)
	if err != nil {
		return err
	}
	_, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, sql.Named("list", list), sql.Named("columns", string(b)))
	return err
}

// ImportSubscribers adds or updates the rows of next in one transaction,
// importBatch rows per prepared upsert statement (as ImportCampaign
// inserts): a key already in the list keeps its row (id, source,
// created_at) and takes the new address and fields. Every row is either
// added or updated, so the rows added are the growth of the list's count.
func (db *DB) ImportSubscribers(ctx context.Context, listID int64, source string, consent bool, next func() (*store.NewRecipient, error)) (added, updated int, err error) {
	const cols = 8 // see queries/subscriber_upsert.sql
	at := ms(now())
	err = db.write(ctx, func(tx *sql.Tx) error {
		columns, err := loadColumns(ctx, tx, db.q.listColumnsW, listID)
		if err != nil {
			return err
		}
		count := tx.StmtContext(ctx, db.q.subscribersCountW)
		var before, after int
		if err := count.QueryRowContext(ctx, sql.Named("list", listID)).Scan(&before); err != nil {
			return err
		}
		var maxID int64
		if err := tx.StmtContext(ctx, db.cq.subscribersMaxID).QueryRowContext(ctx).Scan(&maxID); err != nil {
			return err
		}
		batch := tx.StmtContext(ctx, db.q.subscriberUpsertBatch)
		one := tx.StmtContext(ctx, db.q.subscriberUpsert)
		args := make([]any, 0, cols*importBatch)
		n := 0
		for ; ; n++ {
			r, err := next()
			if err != nil {
				return fmt.Errorf("subscriber %d: %w", n+1, err)
			}
			if r == nil {
				break
			}
			if r.Email == "" || r.Key == "" {
				return fmt.Errorf("subscriber %d (line %d): email and key are required", n+1, r.Line)
			}
			fields, err := encodeFields(r.Fields)
			if err != nil {
				return fmt.Errorf("subscriber %d (line %d): %w", n+1, r.Line, err)
			}
			columns.add(r.Fields, r.Columns)
			args = append(args, listID, r.Email, r.Domain, r.Key, fields, source, at, at)
			if len(args) == cap(args) {
				if _, err := batch.ExecContext(ctx, args...); err != nil {
					return fmt.Errorf("subscribers up to line %d: %w", r.Line, err)
				}
				args = args[:0]
			}
		}
		for i := 0; i < len(args); i += cols {
			if _, err := one.ExecContext(ctx, args[i:i+cols]...); err != nil {
				return fmt.Errorf("subscriber %v: %w", args[i+1], err)
			}
		}
		if err := count.QueryRowContext(ctx, sql.Named("list", listID)).Scan(&after); err != nil {
			return err
		}
		added, updated = after-before, n-(after-before)
		// Consent evidence: the import subscribed the addresses it added.
		if consent {
			if _, err := tx.StmtContext(ctx, db.cq.consentFromImport).ExecContext(ctx, sql.Named("list", listID),
				sql.Named("before", maxID), sql.Named("source", source), sql.Named("at", at)); err != nil {
				return err
			}
		}
		return columns.save(ctx, tx, db.q.listSetColumns, listID)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: import into list %d: %w", listID, err)
	}
	return added, updated, nil
}

// Subscribers streams the list's subscribers with an id above f.AfterID
// in id order from one read snapshot, keeping those that match f.Search,
// up to f.Limit of them.
func (db *DB) Subscribers(ctx context.Context, listID int64, f store.SubscriberFilter, fn func(*store.Subscriber) error) error {
	match := searcher(f.Search)
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.StmtContext(ctx, db.q.listExists).QueryRowContext(ctx, sql.Named("list", listID)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.subscribersList).QueryContext(ctx,
			sql.Named("list", listID), sql.Named("after", f.AfterID))
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			s, err := scanSubscriber(rows)
			if err != nil {
				return err
			}
			if !match(s) {
				continue
			}
			if fnErr = fn(s); fnErr != nil {
				return fnErr
			}
			if n++; f.Limit > 0 && n >= f.Limit {
				return nil
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: subscribers of list %d: %w", listID, err)
	}
	return nil
}

// searcher returns the match of a SubscriberFilter's Search: a substring of
// the email or of a field value, in any case. It is done here rather than
// in SQL, whose lower() folds ASCII letters only.
func searcher(q string) func(*store.Subscriber) bool {
	if q == "" {
		return func(*store.Subscriber) bool { return true }
	}
	q = strings.ToLower(q)
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), q) }
	return func(s *store.Subscriber) bool {
		if has(s.Email) {
			return true
		}
		for _, v := range s.Fields {
			if has(v) {
				return true
			}
		}
		return false
	}
}

// scanSubscriber reads the columns of queries/subscribers_list.sql.
func scanSubscriber(s scanner) (*store.Subscriber, error) {
	var (
		sub              store.Subscriber
		fields           string
		created, updated int64
	)
	if err := s.Scan(&sub.ID, &sub.ListID, &sub.Email, &sub.Domain, &sub.Key, &fields, &sub.Source, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if sub.Fields, err = decodeFields(fields); err != nil {
		return nil, fmt.Errorf("subscriber %d: fields: %w", sub.ID, err)
	}
	sub.CreatedAt, sub.UpdatedAt = fromMS(created), fromMS(updated)
	return &sub, nil
}

// Subscriber returns one subscriber of the list.
func (db *DB) Subscriber(ctx context.Context, listID, id int64) (*store.Subscriber, error) {
	s, err := scanSubscriber(db.q.subscriberGet.QueryRowContext(ctx, sql.Named("list", listID), sql.Named("id", id)))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscriber %d of list %d: %w", id, listID, err)
	}
	return s, nil
}

// UpdateSubscriber changes the subscriber's address and fields in one
// transaction; ErrExists when another subscriber of the list has the key.
func (db *DB) UpdateSubscriber(ctx context.Context, s *store.Subscriber) error {
	if s == nil || s.Email == "" || s.Key == "" {
		return errors.New("sqlite: update subscriber: email and key are required")
	}
	fields, err := encodeFields(s.Fields)
	if err != nil {
		return fmt.Errorf("sqlite: update subscriber %d: %w", s.ID, err)
	}
	at := now()
	err = db.write(ctx, func(tx *sql.Tx) error {
		cols, err := loadColumns(ctx, tx, db.q.listColumnsW, s.ListID)
		if err != nil {
			return err
		}
		var one int
		err = tx.StmtContext(ctx, db.q.subscriberKeyTaken).QueryRowContext(ctx,
			sql.Named("list", s.ListID), sql.Named("key", s.Key), sql.Named("id", s.ID)).Scan(&one)
		switch {
		case err == nil:
			return store.ErrExists
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		n, err := execCount(ctx, tx, db.q.subscriberUpdate, sql.Named("list", s.ListID), sql.Named("id", s.ID),
			sql.Named("email", s.Email), sql.Named("domain", s.Domain), sql.Named("key", s.Key),
			sql.Named("fields", fields), sql.Named("now", ms(at)))
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		cols.add(s.Fields, nil)
		return cols.save(ctx, tx, db.q.listSetColumns, s.ListID)
	})
	if err != nil {
		return fmt.Errorf("sqlite: update subscriber %d of list %d: %w", s.ID, s.ListID, err)
	}
	s.UpdatedAt = at
	return nil
}

// DeleteSubscriber deletes one subscriber of the list.
func (db *DB) DeleteSubscriber(ctx context.Context, listID, id int64) error {
	if err := db.execOne(ctx, db.q.subscriberDelete, sql.Named("list", listID), sql.Named("id", id)); err != nil {
		return fmt.Errorf("sqlite: delete subscriber %d of list %d: %w", id, listID, err)
	}
	return nil
}
