package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// claimSQL leases due rows in one statement. The CTEs pick the rows with
// SELECT … FOR UPDATE SKIP LOCKED on the partial indexes of due rows:
// suspect is the first due row released by a crash (crashes > 0), taken
// alone; batch, only when there is none, takes up to $5 other due rows
// (crashes = 0) in next_at, id order. A row another claimer has locked
// is skipped, not waited for; a row another claimer has just updated is
// re-checked against the WHERE clause on its new version and dropped.
// The UPDATE then leases every picked row, except one whose address or
// domain is on the suppression list now: that one becomes suppressed,
// with its entry's reason (the address's own first) and its attempt not
// counted. Nothing is picked before the campaign's start time.
const claimSQL = `WITH due AS (
	SELECT 1 FROM campaigns WHERE id = $1 AND start_at <= $2
), suspect AS (
	SELECT d.id FROM deliveries AS d
	WHERE d.campaign_id = $1 AND d.state IN ('pending', 'deferred') AND d.crashes > 0
		AND d.next_at <= $2 AND EXISTS (SELECT 1 FROM due)
	ORDER BY d.next_at, d.id
	LIMIT 1
	FOR UPDATE OF d SKIP LOCKED
), batch AS (
	SELECT d.id FROM deliveries AS d
	WHERE d.campaign_id = $1 AND d.state IN ('pending', 'deferred') AND d.crashes = 0
		AND d.next_at <= $2 AND EXISTS (SELECT 1 FROM due) AND NOT EXISTS (SELECT 1 FROM suspect)
	ORDER BY d.next_at, d.id
	LIMIT $5
	FOR UPDATE OF d SKIP LOCKED
), picked AS MATERIALIZED (
	SELECT p.id, (
		SELECT s.reason FROM suppressions AS s
		WHERE s."key" IN (d."key", '@' || d.domain)
		ORDER BY s."key" = d."key" DESC
		LIMIT 1) AS reason
	FROM (SELECT id FROM suspect UNION ALL SELECT id FROM batch) AS p
	JOIN deliveries AS d ON d.id = p.id
)
UPDATE deliveries AS d
SET state = CASE WHEN p.reason IS NULL THEN 'sending' ELSE 'suppressed' END,
	attempts = CASE WHEN p.reason IS NULL THEN d.attempts + 1 ELSE d.attempts END,
	lease_owner = CASE WHEN p.reason IS NULL THEN $3 ELSE '' END,
	lease_until = CASE WHEN p.reason IS NULL THEN $4::bigint ELSE 0 END,
	text = coalesce(p.reason, d.text),
	updated_at = $2
FROM picked AS p
WHERE d.id = p.id
RETURNING d.id, d.campaign_id, d.line, d.email, d.domain, d."key", d.fields, d.attempts, d.next_at,
	d.message_id, d.possible_duplicate, d.crashes, p.reason IS NOT NULL`

// Claim leases up to limit due deliveries.
//
// The lease design: a claimed row is state sending with attempts+1, a
// lease owner and a lease end, written by one statement (claimSQL, one
// round trip) that selects the rows FOR UPDATE SKIP LOCKED. Claimers in
// any number of processes therefore never get the same row and never
// wait for one another: each skips the rows the others are taking. The
// attempt number is the fence that Record checks, so a worker whose lease
// ended and whose row was released (ReleaseLeases) and claimed again
// cannot overwrite the newer attempt. A row released by a crash is
// claimed alone, before the others. Rows that turn out to be suppressed
// are not returned; when every picked row was, the claim is tried again
// so that a caller is not told "nothing due" while rows are.
func (db *DB) Claim(ctx context.Context, campaignID int64, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	leaseUntil, updated := fromMS(ms(now.Add(lease))), fromMS(ms(now))
	var out []store.Delivery
	for {
		picked := 0
		rows, err := db.pool.Query(ctx, claimSQL, campaignID, ms(now), owner, ms(leaseUntil), limit)
		if err != nil {
			return nil, fmt.Errorf("postgres: claim campaign %d: %w", campaignID, err)
		}
		for rows.Next() {
			d := store.Delivery{State: queue.Sending, LeaseOwner: owner, LeaseUntil: leaseUntil, UpdatedAt: updated}
			var (
				line, attempts, crashes int32
				next                    int64
				suppressed              bool
			)
			if err := rows.Scan(&d.ID, &d.CampaignID, &line, &d.Email, &d.Domain, &d.Key, &d.Fields, &attempts, &next,
				&d.MessageID, &d.PossibleDuplicate, &crashes, &suppressed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("postgres: claim campaign %d: %w", campaignID, err)
			}
			picked++
			if suppressed {
				continue
			}
			d.Line, d.Attempts, d.Crashes, d.NextAt = int(line), int(attempts), int(crashes), fromMS(next)
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: claim campaign %d: %w", campaignID, err)
		}
		if len(out) > 0 || picked == 0 {
			break
		}
	}
	if len(out) == 0 {
		// Nothing due: tell an unknown campaign apart.
		if err := campaignExists(ctx, db.pool, campaignID); err != nil {
			return nil, fmt.Errorf("postgres: claim campaign %d: %w", campaignID, err)
		}
		return nil, nil
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

// ReleaseLeases returns sending rows whose lease ended before now (all of
// them when now is zero) to pending, due at once. The message may have
// gone out, so the row is flagged as a possible duplicate; attempts is
// kept, it is the fence that turns away the late worker's result. The
// release counts as a crash; at the CrashLimit-th in a row the recipient
// is failed as crash-loop so the rest of the list can finish.
func (db *DB) ReleaseLeases(ctx context.Context, campaignID int64, now time.Time) (int, error) {
	due := now
	if due.IsZero() {
		due = time.Now()
	}
	var n int
	err := db.write(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE deliveries
SET state = CASE WHEN crashes + 1 >= $4 THEN 'failed' ELSE 'pending' END,
	class = CASE WHEN crashes + 1 >= $4 THEN 'crash-loop' ELSE class END,
	text = CASE WHEN crashes + 1 >= $4 THEN $5 ELSE text END,
	code = CASE WHEN crashes + 1 >= $4 THEN 0 ELSE code END,
	enhanced = CASE WHEN crashes + 1 >= $4 THEN '' ELSE enhanced END,
	crashes = crashes + 1,
	next_at = $3::bigint,
	lease_owner = '',
	lease_until = 0,
	possible_duplicate = true,
	updated_at = $3
WHERE id IN (
	-- Rows are locked in id order, as Record locks them: two
	-- transactions that take the same rows in the same order cannot
	-- deadlock.
	SELECT id FROM deliveries
	WHERE campaign_id = $1 AND state = 'sending' AND ($2::bigint = 0 OR lease_until < $2::bigint)
	ORDER BY id
	FOR UPDATE)`,
			campaignID, ms(now), ms(due), store.CrashLimit, crashReason)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: release leases of campaign %d: %w", campaignID, err)
	}
	return n, nil
}

// classFilter is the SQL condition on class of the classes in $2 (a text
// array; empty: every class).
const classFilter = `(cardinality($2::text[]) = 0 OR class = ANY($2::text[]))`

// textArray is classes as a text array parameter (never NULL).
func textArray[S ~string](v []S) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = string(s)
	}
	return out
}

// Requeue moves failed deliveries of the given classes (all when empty)
// back to pending, due at now. Failed rows whose address or domain is
// suppressed become suppressed instead, in the same transaction.
func (db *DB) Requeue(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	var n int
	err := db.write(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		args := []any{campaignID, textArray(classes), max(ms(now), 1)}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'suppressed', updated_at = $3
WHERE campaign_id = $1 AND state = 'failed' AND `+classFilter+`
	AND EXISTS (SELECT 1 FROM suppressions AS s WHERE s."key" IN (deliveries."key", '@' || deliveries.domain))`, args...); err != nil {
			return err
		}
		// crashes = 0: a resend after the cause was fixed starts a new count.
		tag, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'pending', next_at = $3, crashes = 0, updated_at = $3
WHERE campaign_id = $1 AND state = 'failed' AND `+classFilter, args...)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: requeue campaign %d: %w", campaignID, err)
	}
	return n, nil
}

// DueNow makes deferred deliveries of the given classes (all when empty)
// due at now.
func (db *DB) DueNow(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	var n int
	err := db.write(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE deliveries SET next_at = $3, updated_at = $3
WHERE campaign_id = $1 AND state = 'deferred' AND next_at > $3 AND `+classFilter,
			campaignID, textArray(classes), max(ms(now), 1))
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: make deferred rows due in campaign %d: %w", campaignID, err)
	}
	return n, nil
}

// Counts tallies the campaign from one snapshot, so the states always sum
// to the total.
func (db *DB) Counts(ctx context.Context, campaignID int64) (*store.Counts, error) {
	c := &store.Counts{ByState: map[queue.State]int{}, ByClass: map[outcome.Class]int{}}
	err := db.read(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT state, class, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY state, class`, campaignID)
		if err != nil {
			return err
		}
		var (
			state, class string
			n            int
		)
		_, err = pgx.ForEachRow(rows, []any{&state, &class, &n}, func() error {
			c.ByState[queue.State(state)] += n
			c.Total += n
			if state == string(queue.Failed) {
				c.ByClass[outcome.Class(class)] += n
			}
			return nil
		})
		if err != nil {
			return err
		}
		var due *int64
		if err := tx.QueryRow(ctx, `SELECT min(next_at) FROM deliveries WHERE campaign_id = $1 AND state IN ('pending', 'deferred')`,
			campaignID).Scan(&due); err != nil {
			return err
		}
		if due != nil {
			c.NextDue = fromMS(max(*due, 1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: counts of campaign %d: %w", campaignID, err)
	}
	return c, nil
}

// pageSize is how many rows one query of a listing reads: the listings
// walk by key a page at a time, so no transaction stays open while the
// caller's function works.
const pageSize = 1000

// deliveryColumns are the columns scanDelivery reads.
const deliveryColumns = `id, campaign_id, line, email, domain, "key", fields, state, attempts, next_at,
	lease_owner, lease_until, class, step, code, enhanced, text, host, via, message_id,
	possible_duplicate, created_at, updated_at, delivered_at, crashes, bounced_at, complained_at`

// Deliveries streams the campaign's deliveries in id order to fn; an
// error from fn stops the walk and is returned as is. Rows are read a
// page at a time by id (keyset paging), each page its own snapshot, so a
// slow fn holds no transaction or connection open.
func (db *DB) Deliveries(ctx context.Context, campaignID int64, f store.DeliveryFilter, fn func(*store.Delivery) error) error {
	if err := campaignExists(ctx, db.pool, campaignID); err != nil {
		return fmt.Errorf("postgres: deliveries of campaign %d: %w", campaignID, err)
	}
	states, classes := textArray(f.States), textArray(f.Classes)
	after := f.AfterID
	page := make([]*store.Delivery, 0, pageSize)
	for {
		rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
WHERE campaign_id = $1 AND id > $2
	AND (cardinality($3::text[]) = 0 OR state = ANY($3::text[]))
	AND (cardinality($4::text[]) = 0 OR class = ANY($4::text[]))
ORDER BY id
LIMIT $5`, campaignID, after, states, classes, pageSize)
		if err == nil {
			page, err = collectDeliveries(rows, page[:0])
		}
		if err != nil {
			return fmt.Errorf("postgres: deliveries of campaign %d: %w", campaignID, err)
		}
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

func collectDeliveries(rows pgx.Rows, out []*store.Delivery) ([]*store.Delivery, error) {
	defer rows.Close()
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// scanDelivery reads the columns of deliveryColumns.
func scanDelivery(row pgx.Row) (*store.Delivery, error) {
	var (
		d                                        store.Delivery
		state, class, step                       string
		line, attempts, code, crashes            int32
		nextAt, leaseUntil                       int64
		created, updated, delivered, bounced, cm int64
	)
	if err := row.Scan(&d.ID, &d.CampaignID, &line, &d.Email, &d.Domain, &d.Key, &d.Fields, &state,
		&attempts, &nextAt, &d.LeaseOwner, &leaseUntil, &class, &step, &code, &d.Enhanced,
		&d.Text, &d.Host, &d.Via, &d.MessageID, &d.PossibleDuplicate, &created, &updated, &delivered, &crashes,
		&bounced, &cm); err != nil {
		return nil, err
	}
	d.Line, d.Attempts, d.Code, d.Crashes = int(line), int(attempts), int(code), int(crashes)
	d.State = queue.State(state)
	d.Class, d.Step = outcome.Class(class), outcome.Step(step)
	d.NextAt, d.LeaseUntil = fromMS(nextAt), fromMS(leaseUntil)
	d.CreatedAt, d.UpdatedAt, d.DeliveredAt = fromMS(created), fromMS(updated), fromMS(delivered)
	d.BouncedAt, d.ComplainedAt = fromMS(bounced), fromMS(cm)
	return &d, nil
}

// Domains lists the campaign's distinct recipient domains, sorted.
func (db *DB) Domains(ctx context.Context, campaignID int64) ([]string, error) {
	var out []string
	err := db.read(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT DISTINCT domain COLLATE "C" FROM deliveries WHERE campaign_id = $1 ORDER BY 1`, campaignID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: domains of campaign %d: %w", campaignID, err)
	}
	return out, nil
}

// DomainTallies counts the campaign's deliveries by domain, state, class
// and host, sorted by domain.
func (db *DB) DomainTallies(ctx context.Context, campaignID int64) ([]store.DomainTally, error) {
	var out []store.DomainTally
	err := db.read(ctx, func(tx pgx.Tx) error {
		if err := campaignExists(ctx, tx, campaignID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT domain COLLATE "C", state, class, host, count(*) FROM deliveries
			WHERE campaign_id = $1 GROUP BY 1, 2, 3, 4 ORDER BY 1`, campaignID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.DomainTally
			var state, class string
			if err := rows.Scan(&t.Domain, &state, &class, &t.Host, &t.N); err != nil {
				return err
			}
			t.State, t.Class = queue.State(state), outcome.Class(class)
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: domain tallies of campaign %d: %w", campaignID, err)
	}
	return out, nil
}
