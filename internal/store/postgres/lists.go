package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailout/internal/store"
)

// exists maps a unique violation (a name, key or email already taken) to
// store.ErrExists.
func exists(err error) error {
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

// changeOne runs a write that must change exactly one row, else
// store.ErrNotFound.
func (db *DB) changeOne(ctx context.Context, sql string, args ...any) error {
	tag, err := db.pool.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CreateList stores a new, empty list; ErrExists when the name is taken.
func (db *DB) CreateList(ctx context.Context, l *store.List) error {
	if l == nil || l.Name == "" {
		return errors.New("postgres: create list: a name is required")
	}
	created := now()
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO lists (name, created_at) VALUES ($1, $2) RETURNING id`,
		l.Name, ms(created)).Scan(&id)
	if err != nil {
		return fmt.Errorf("postgres: create list %q: %w", l.Name, exists(err))
	}
	l.ID, l.CreatedAt, l.Columns, l.Subscribers = id, created, nil, 0
	return nil
}

// listColumns are the columns of a list and its number of subscribers.
const listColumns = `l.id, l.name, l.created_at, l.columns,
	(SELECT count(*) FROM subscribers AS s WHERE s.list_id = l.id)`

func scanList(row pgx.Row) (*store.List, error) {
	var (
		l       store.List
		created int64
	)
	if err := row.Scan(&l.ID, &l.Name, &created, &l.Columns, &l.Subscribers); err != nil {
		return nil, err
	}
	l.CreatedAt = fromMS(created)
	if len(l.Columns) == 0 {
		l.Columns = nil
	}
	return &l, nil
}

// List returns one list with its columns and number of subscribers.
func (db *DB) List(ctx context.Context, id int64) (*store.List, error) {
	l, err := scanList(db.pool.QueryRow(ctx, `SELECT `+listColumns+` FROM lists AS l WHERE l.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: list %d: %w", id, notFound(err))
	}
	return l, nil
}

// Lists returns every list by name.
func (db *DB) Lists(ctx context.Context) ([]store.List, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+listColumns+` FROM lists AS l ORDER BY l.name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: lists: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.List, error) {
		l, err := scanList(row)
		if err != nil {
			return store.List{}, err
		}
		return *l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: lists: %w", err)
	}
	return out, nil
}

// RenameList gives the list a new name; ErrExists when another list has it.
func (db *DB) RenameList(ctx context.Context, id int64, name string) error {
	if name == "" {
		return fmt.Errorf("postgres: rename list %d: a name is required", id)
	}
	if err := db.changeOne(ctx, `UPDATE lists SET name = $2 WHERE id = $1`, id, name); err != nil {
		return fmt.Errorf("postgres: rename list %d to %q: %w", id, name, exists(err))
	}
	return nil
}

// DeleteList deletes the list and, by the foreign key's cascade, its
// subscribers.
func (db *DB) DeleteList(ctx context.Context, id int64) error {
	if err := db.changeOne(ctx, `DELETE FROM lists WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete list %d: %w", id, err)
	}
	return nil
}

// columnSet is a list's columns while they grow in a write transaction.
type columnSet struct {
	names   []string
	has     map[string]bool
	changed bool
}

// lockColumns reads the list's columns and locks its row until the
// transaction ends: imports and edits of one list take turns, so the
// columns grow without a lost update and an import's counts are exact.
func lockColumns(ctx context.Context, tx pgx.Tx, list int64) (*columnSet, error) {
	var names []string
	err := tx.QueryRow(ctx, `SELECT columns FROM lists WHERE id = $1 FOR UPDATE`, list).Scan(&names)
	if err != nil {
		return nil, notFound(err)
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
func (c *columnSet) save(ctx context.Context, tx pgx.Tx, list int64) error {
	if !c.changed {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE lists SET columns = $2 WHERE id = $1`, list, c.names)
	return err
}

// fieldsOf is f for a JSONB column: never JSON null, so that
// jsonb_each_text can always read it.
func fieldsOf(f map[string]string) map[string]string {
	if f == nil {
		return map[string]string{}
	}
	return f
}

// importSource feeds the rows of an import to COPY, checking each and
// growing the list's columns as they pass.
type importSource struct {
	next    func() (*store.NewRecipient, error)
	columns *columnSet
	n       int
	row     []any
	err     error
}

func (s *importSource) Next() bool {
	r, err := s.next()
	if err != nil {
		s.err = fmt.Errorf("subscriber %d: %w", s.n+1, err)
		return false
	}
	if r == nil {
		return false
	}
	s.n++
	if r.Email == "" || r.Key == "" {
		s.err = fmt.Errorf("subscriber %d (line %d): email and key are required", s.n, r.Line)
		return false
	}
	s.columns.add(r.Fields, r.Columns)
	s.row = []any{int64(s.n), r.Email, r.Domain, r.Key, fieldsOf(r.Fields)}
	return true
}

func (s *importSource) Values() ([]any, error) { return s.row, nil }
func (s *importSource) Err() error             { return s.err }

// ImportSubscribers adds or updates the rows of next in one transaction:
// they are copied (COPY) into a temporary table, then upserted in one
// statement. A key already in the list keeps its row (id, source,
// created_at) and takes the new address and fields; a key given twice
// takes the last row's. Every row is either added or updated: the rows
// added are the keys the list did not have.
func (db *DB) ImportSubscribers(ctx context.Context, listID int64, source string, consent bool, next func() (*store.NewRecipient, error)) (added, updated int, err error) {
	at := ms(now())
	err = db.write(ctx, func(tx pgx.Tx) error {
		columns, err := lockColumns(ctx, tx, listID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE import_subscribers (
	seq    BIGINT NOT NULL,
	email  TEXT   NOT NULL,
	domain TEXT   NOT NULL,
	"key"  TEXT   NOT NULL,
	fields JSONB  NOT NULL
) ON COMMIT DROP`); err != nil {
			return err
		}
		src := &importSource{next: next, columns: columns}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"import_subscribers"},
			[]string{"seq", "email", "domain", "key", "fields"}, src)
		if src.err != nil {
			return src.err
		}
		if err != nil {
			return fmt.Errorf("subscribers: %w", err)
		}
		// The list's row is locked: no other import adds keys meanwhile.
		if err := tx.QueryRow(ctx, `SELECT count(DISTINCT i."key") FROM import_subscribers AS i
WHERE NOT EXISTS (SELECT 1 FROM subscribers AS s WHERE s.list_id = $1 AND s."key" = i."key")`,
			listID).Scan(&added); err != nil {
			return err
		}
		// ON CONFLICT may touch a row once per statement: each key's last
		// row only (DISTINCT ON keeps the first of each key's seq DESC).
		// With consent, the evidence: the import subscribed the addresses
		// it added (xmax = 0: the row was inserted, not updated), one log
		// entry each, in the order of the file.
		if _, err := tx.Exec(ctx, `WITH up AS (
	INSERT INTO subscribers (list_id, email, domain, "key", fields, source, created_at, updated_at)
	SELECT $1, email, domain, "key", fields, $2, $3, $3
	FROM (SELECT DISTINCT ON ("key") * FROM import_subscribers ORDER BY "key", seq DESC) AS i
	ORDER BY seq
	ON CONFLICT (list_id, "key") DO UPDATE SET
		email = excluded.email,
		domain = excluded.domain,
		fields = excluded.fields,
		updated_at = excluded.updated_at
	RETURNING id, list_id, email, "key", (xmax = 0) AS inserted
)
INSERT INTO consents (list_id, email, "key", action, source, created_at)
SELECT list_id, email, "key", 'subscribe', $2, $3 FROM up WHERE inserted AND $4 ORDER BY id`, listID, source, at, consent); err != nil {
			return err
		}
		updated = src.n - added
		return columns.save(ctx, tx, listID)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: import into list %d: %w", listID, err)
	}
	return added, updated, nil
}

const subscriberColumns = `id, list_id, email, domain, "key", fields, source, created_at, updated_at`

func scanSubscriber(row pgx.Row) (*store.Subscriber, error) {
	var (
		s                store.Subscriber
		created, updated int64
	)
	if err := row.Scan(&s.ID, &s.ListID, &s.Email, &s.Domain, &s.Key, &s.Fields, &s.Source, &created, &updated); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	return &s, nil
}

// likePattern is a LIKE pattern matching s anywhere, its own % _ and \
// escaped (backslash is LIKE's default escape character).
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// Subscribers streams the list's subscribers with an id above f.AfterID
// in id order from one read snapshot, those that match f.Search, up to
// f.Limit of them. Search is a case-insensitive substring (ILIKE) of the
// email or of a field's value, not of a field's name, as in the SQLite
// store; ILIKE folds the case of non-ASCII letters by the database's
// LC_CTYPE (C.UTF-8 or a language's locale do, plain C does not).
func (db *DB) Subscribers(ctx context.Context, listID int64, f store.SubscriberFilter, fn func(*store.Subscriber) error) error {
	var limit *int
	if f.Limit > 0 {
		limit = &f.Limit
	}
	var fnErr error
	err := db.read(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM lists WHERE id = $1`, listID).Scan(&one); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT `+subscriberColumns+` FROM subscribers
WHERE list_id = $1 AND id > $2
	AND ($3 = '' OR email ILIKE $4
		OR EXISTS (SELECT 1 FROM jsonb_each_text(fields) AS f WHERE f.value ILIKE $4))
ORDER BY id
LIMIT $5`, listID, f.AfterID, f.Search, likePattern(f.Search), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanSubscriber(rows)
			if err != nil {
				return err
			}
			if fnErr = fn(s); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("postgres: subscribers of list %d: %w", listID, err)
	}
	return nil
}

// Subscriber returns one subscriber of the list.
func (db *DB) Subscriber(ctx context.Context, listID, id int64) (*store.Subscriber, error) {
	s, err := scanSubscriber(db.pool.QueryRow(ctx, `SELECT `+subscriberColumns+` FROM subscribers
WHERE list_id = $1 AND id = $2`, listID, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: subscriber %d of list %d: %w", id, listID, notFound(err))
	}
	return s, nil
}

// UpdateSubscriber changes the subscriber's address and fields in one
// transaction; ErrExists when another subscriber of the list has the key.
func (db *DB) UpdateSubscriber(ctx context.Context, s *store.Subscriber) error {
	if s == nil || s.Email == "" || s.Key == "" {
		return errors.New("postgres: update subscriber: email and key are required")
	}
	at := now()
	err := db.write(ctx, func(tx pgx.Tx) error {
		cols, err := lockColumns(ctx, tx, s.ListID)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE subscribers
SET email = $3, domain = $4, "key" = $5, fields = $6, updated_at = $7
WHERE list_id = $1 AND id = $2`, s.ListID, s.ID, s.Email, s.Domain, s.Key, fieldsOf(s.Fields), ms(at))
		if err != nil {
			return exists(err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		cols.add(s.Fields, nil)
		return cols.save(ctx, tx, s.ListID)
	})
	if err != nil {
		return fmt.Errorf("postgres: update subscriber %d of list %d: %w", s.ID, s.ListID, err)
	}
	s.UpdatedAt = at
	return nil
}

// DeleteSubscriber deletes one subscriber of the list.
func (db *DB) DeleteSubscriber(ctx context.Context, listID, id int64) error {
	if err := db.changeOne(ctx, `DELETE FROM subscribers WHERE list_id = $1 AND id = $2`, listID, id); err != nil {
		return fmt.Errorf("postgres: delete subscriber %d of list %d: %w", id, listID, err)
	}
	return nil
}
