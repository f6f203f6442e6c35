package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// Claim leases up to limit due deliveries in one transaction. The writer is
// a single connection and every write transaction begins IMMEDIATE, so two
// claimers, in this process or another one, run one after the other and
// never return the same row.
//
// Rows never claimed before come first, as a range: one claims row leases
// them all and the rows themselves are not written (0002_claims.sql; a
// per-row UPDATE was the largest single cost of a message). The rest (due
// retries, refunds, released leases) are leased row by row by claim.sql.
func (db *DB) Claim(ctx context.Context, campaignID int64, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []store.Delivery
	leaseUntil, updated := fromMS(ms(now.Add(lease))), fromMS(ms(now))
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			d := store.Delivery{State: queue.Sending, LeaseOwner: owner, LeaseUntil: leaseUntil, UpdatedAt: updated}
			if err := scanClaimed(rows, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		var startAt int64
		err := tx.StmtContext(ctx, db.q.campaignStartAt).QueryRowContext(ctx, sql.Named("campaign", campaignID)).Scan(&startAt)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if ms(now) < startAt {
			return nil // scheduled: nothing is due before the start time
		}
		camp := sql.Named("campaign", campaignID)
		// A row released by a crash goes first, and alone (0004_crashes.sql).
		rows, err := tx.StmtContext(ctx, db.q.claimSuspect).QueryContext(ctx, camp,
			sql.Named("owner", owner), sql.Named("now", ms(now)), sql.Named("lease_until", ms(leaseUntil)))
		if err != nil {
			return err
		}
		if err := scan(rows); err != nil {
			return err
		}
		if out, err = db.dropSuppressed(ctx, tx, out, updated); err != nil || len(out) > 0 {
			return err
		}
		var cursor int64
		if err := tx.StmtContext(ctx, db.q.claimCursor).QueryRowContext(ctx, camp).Scan(&cursor); err != nil {
			return err
		}
		rows, err = tx.StmtContext(ctx, db.q.claimFresh).QueryContext(ctx, camp,
			sql.Named("cursor", cursor), sql.Named("limit", limit))
		if err != nil {
			return err
		}
		if err := scan(rows); err != nil {
			return err
		}
		if n := len(out); n > 0 {
			if _, err := tx.StmtContext(ctx, db.q.claimInsert).ExecContext(ctx, camp,
				sql.Named("owner", owner), sql.Named("lease_until", ms(leaseUntil)),
				sql.Named("first_id", out[0].ID), sql.Named("last_id", out[n-1].ID)); err != nil {
				return err
			}
		}
		if len(out) < limit {
			rows, err = tx.StmtContext(ctx, db.q.claim).QueryContext(ctx, camp,
				sql.Named("owner", owner),
				sql.Named("now", ms(now)),
				sql.Named("lease_until", ms(leaseUntil)),
				sql.Named("limit", limit-len(out)),
			)
			if err != nil {
				return err
			}
			if err := scan(rows); err != nil {
				return err
			}
		}
		// Checked at claim time, just before sending: an address
		// suppressed while the campaign runs is not sent to.
		out, err = db.dropSuppressed(ctx, tx, out, updated)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim campaign %d: %w", campaignID, err)
	}
	// RETURNING has no defined order; the claim took them in this one.
	slices.SortFunc(out, func(a, b store.Delivery) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// crashReason is the text of a delivery failed as crash-loop.
var crashReason = fmt.Sprintf("the process stopped %d times in a row while this recipient was being sent; given up so the rest of the list goes on (the message may have been received)", store.CrashLimit)

// ReleaseLeases returns expired leases (all leases when now is zero) to
// pending, flagged as possible duplicates: per-row leases, and the rows of
// ended range claims that got no result.
func (db *DB) ReleaseLeases(ctx context.Context, campaignID int64, now time.Time) (int, error) {
	due := now
	if due.IsZero() {
		due = time.Now()
	}
	released := 0
	err := db.write(ctx, func(tx *sql.Tx) error {
		released = 0
		if err := campaignExists(ctx, tx, db.q.campaignExistsW, campaignID); err != nil {
			return err
		}
		camp := sql.Named("campaign", campaignID)
		limit, reason := sql.Named("limit", store.CrashLimit), sql.Named("reason", crashReason)
		n, err := execCount(ctx, tx, db.q.releaseLeases, camp, sql.Named("now", ms(now)), sql.Named("due", ms(due)), limit, reason)
		if err != nil {
			return err
		}
		released += n
		type claimRange struct{ id, first, last int64 }
		var ended []claimRange
		rows, err := tx.StmtContext(ctx, db.q.claimsExpired).QueryContext(ctx, camp, sql.Named("now", ms(now)))
		if err != nil {
			return err
		}
		for rows.Next() {
			var c claimRange
			if err := rows.Scan(&c.id, &c.first, &c.last); err != nil {
				rows.Close()
				return err
			}
			ended = append(ended, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range ended {
			n, err := execCount(ctx, tx, db.q.claimRelease, camp,
				sql.Named("due", ms(due)), sql.Named("first_id", c.first), sql.Named("last_id", c.last), limit, reason)
			if err != nil {
				return err
			}
			released += n
			if _, err := tx.StmtContext(ctx, db.q.claimDelete).ExecContext(ctx, sql.Named("id", c.id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: release leases of campaign %d: %w", campaignID, err)
	}
	return released, nil
}

// Requeue moves failed deliveries of the given classes (all when empty)
// back to pending, due at now. Failed rows whose address or domain is
// suppressed become suppressed instead, in the same transaction.
func (db *DB) Requeue(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	args := []any{sql.Named("campaign", campaignID), sql.Named("classes", jsonList(classes)), sql.Named("now", ms(now))}
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsW, campaignID); err != nil {
			return err
		}
		if _, err := execCount(ctx, tx, db.q.requeueSuppressed, args...); err != nil {
			return err
		}
		var err error
		n, err = execCount(ctx, tx, db.q.requeue, args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: requeue campaign %d: %w", campaignID, err)
	}
	return n, nil
}

// DueNow makes deferred deliveries of the given classes (all when empty)
// due at now.
func (db *DB) DueNow(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	return db.byClasses(ctx, "make deferred rows due in", db.q.dueNow, campaignID, classes, now)
}

// byClasses runs a campaign-wide update that takes :classes and :now.
func (db *DB) byClasses(ctx context.Context, what string, stmt *sql.Stmt, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	n, err := db.exec(ctx, campaignID, stmt,
		sql.Named("campaign", campaignID), sql.Named("classes", jsonList(classes)), sql.Named("now", ms(now)))
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s campaign %d: %w", what, campaignID, err)
	}
	return n, nil
}

// exec runs one campaign-wide update in a write transaction and returns the
// rows it changed.
func (db *DB) exec(ctx context.Context, campaignID int64, stmt *sql.Stmt, args ...any) (int, error) {
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsW, campaignID); err != nil {
			return err
		}
		var err error
		n, err = execCount(ctx, tx, stmt, args...)
		return err
	})
	return n, err
}

// execCount runs stmt in tx and returns how many rows it changed.
func execCount(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, args ...any) (int, error) {
	res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Counts tallies the campaign from one snapshot, so the states always sum
// to the total.
func (db *DB) Counts(ctx context.Context, campaignID int64) (*store.Counts, error) {
	c := &store.Counts{ByState: map[queue.State]int{}, ByClass: map[outcome.Class]int{}}
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsR, campaignID); err != nil {
			return err
		}
		arg := sql.Named("campaign", campaignID)
		if err := groupCount(ctx, tx.StmtContext(ctx, db.q.countsByState), arg, func(k string, n int) {
			c.ByState[queue.State(k)] = n
			c.Total += n
		}); err != nil {
			return err
		}
		if err := groupCount(ctx, tx.StmtContext(ctx, db.q.countsFailedByClass), arg, func(k string, n int) {
			c.ByClass[outcome.Class(k)] = n
		}); err != nil {
			return err
		}
		// Fresh rows inside range claims are stored pending but in flight.
		var claimed int
		if err := tx.StmtContext(ctx, db.q.countsClaimed).QueryRowContext(ctx, arg).Scan(&claimed); err != nil {
			return err
		}
		if claimed > 0 {
			c.ByState[queue.Sending] += claimed
			if c.ByState[queue.Pending] -= claimed; c.ByState[queue.Pending] == 0 {
				delete(c.ByState, queue.Pending)
			}
		}
		var due sql.NullInt64
		if err := tx.StmtContext(ctx, db.q.countsNextDue).QueryRowContext(ctx, arg).Scan(&due); err != nil {
			return err
		}
		if due.Valid {
			c.NextDue = fromMS(due.Int64)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: counts of campaign %d: %w", campaignID, err)
	}
	return c, nil
}

func groupCount(ctx context.Context, stmt *sql.Stmt, arg sql.NamedArg, fn func(string, int)) error {
	rows, err := stmt.QueryContext(ctx, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		fn(k, n)
	}
	return rows.Err()
}

// Deliveries streams the campaign's deliveries in id order, one row at a
// time, to fn; an error from fn stops the walk and is returned as is.
func (db *DB) Deliveries(ctx context.Context, campaignID int64, f store.DeliveryFilter, fn func(*store.Delivery) error) error {
	states := make([]string, len(f.States))
	for i, s := range f.States {
		states[i] = string(s)
	}
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsR, campaignID); err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.deliveriesList).QueryContext(ctx,
			sql.Named("campaign", campaignID), sql.Named("states", jsonList(states)),
			sql.Named("classes", jsonList(f.Classes)), sql.Named("after", f.AfterID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			if fnErr = fn(d); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: deliveries of campaign %d: %w", campaignID, err)
	}
	return nil
}

// Domains lists the campaign's distinct recipient domains, sorted.
func (db *DB) Domains(ctx context.Context, campaignID int64) ([]string, error) {
	var out []string
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsR, campaignID); err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.domainsList).QueryContext(ctx, sql.Named("campaign", campaignID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: domains of campaign %d: %w", campaignID, err)
	}
	return out, nil
}

// DomainTallies counts the campaign's deliveries by domain, state, class
// and host, sorted by domain.
func (db *DB) DomainTallies(ctx context.Context, campaignID int64) ([]store.DomainTally, error) {
	var out []store.DomainTally
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsR, campaignID); err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.domainTallies).QueryContext(ctx, sql.Named("campaign", campaignID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.DomainTally
			if err := rows.Scan(&t.Domain, &t.State, &t.Class, &t.Host, &t.N); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: domain tallies of campaign %d: %w", campaignID, err)
	}
	return out, nil
}

// jsonList encodes a filter list for json_each; nil encodes as [].
func jsonList[S ~string](v []S) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // a slice of strings always marshals
	return string(b)
}

// scanClaimed reads the columns that queries/claim.sql returns into d.
func scanClaimed(s scanner, d *store.Delivery) error {
	var (
		fields                    string
		line, attempts, next, dup int64
	)
	if err := s.Scan(&d.ID, &d.CampaignID, &line, &d.Email, &d.Domain, &d.Key, &fields, &attempts, &next,
		&d.MessageID, &dup, &d.Crashes); err != nil {
		return err
	}
	m, err := decodeFields(fields)
	if err != nil {
		return fmt.Errorf("delivery %d: fields: %w", d.ID, err)
	}
	d.Fields, d.Line, d.Attempts, d.NextAt = m, int(line), int(attempts), fromMS(next)
	d.PossibleDuplicate = dup != 0
	return nil
}

// scanDelivery reads the columns of queries/deliveries_list.sql.
func scanDelivery(s scanner) (*store.Delivery, error) {
	var (
		d                                    store.Delivery
		fields, state, class, step           string
		nextAt, leaseUntil                   int64
		created, updated, delivered, dupFlag int64
		bounced, complained                  int64
	)
	if err := s.Scan(&d.ID, &d.CampaignID, &d.Line, &d.Email, &d.Domain, &d.Key, &fields, &state,
		&d.Attempts, &nextAt, &d.LeaseOwner, &leaseUntil, &class, &step, &d.Code, &d.Enhanced,
		&d.Text, &d.Host, &d.Via, &d.MessageID, &dupFlag, &created, &updated, &delivered, &d.Crashes,
		&bounced, &complained); err != nil {
		return nil, err
	}
	var err error
	if d.Fields, err = decodeFields(fields); err != nil {
		return nil, fmt.Errorf("delivery %d: fields: %w", d.ID, err)
	}
	d.State = queue.State(state)
	d.Class, d.Step = outcome.Class(class), outcome.Step(step)
	d.NextAt, d.LeaseUntil = fromMS(nextAt), fromMS(leaseUntil)
	d.CreatedAt, d.UpdatedAt, d.DeliveredAt = fromMS(created), fromMS(updated), fromMS(delivered)
	d.BouncedAt, d.ComplainedAt = fromMS(bounced), fromMS(complained)
	d.PossibleDuplicate = dupFlag != 0
	return &d, nil
}
