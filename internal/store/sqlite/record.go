package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// recordParams is how many positional parameters one result binds in
// queries/record_batch.sql.
const recordParams = 14

// Record applies the results in one transaction, each fenced by its
// attempt number; it returns how many applied.
//
// Results are written by the multi-row statement of record_batch.sql in
// chunks of recordChunks, one statement per chunk instead of one per row.
// Refunds, and every result of a batch that names a delivery twice (where
// the order of the results decides which one applies), go through the
// one-row statements, in the order given.
func (db *DB) Record(ctx context.Context, results []store.AttemptResult) (int, error) {
	for _, r := range results {
		if err := r.Check(); err != nil {
			return 0, fmt.Errorf("sqlite: record delivery %d: %w", r.DeliveryID, err)
		}
	}
	if len(results) == 0 {
		return 0, nil
	}
	now := time.Now()
	var applied int
	err := db.write(ctx, func(tx *sql.Tx) error {
		applied = 0
		if store.HasDuplicateIDs(results) {
			for _, r := range results {
				n, err := db.recordOne(ctx, tx, r, now)
				if err != nil {
					return err
				}
				applied += n
			}
			return db.suppressBounces(ctx, tx, results, now)
		}
		batch := make([]store.AttemptResult, 0, len(results))
		for _, r := range results {
			if !r.Refund {
				batch = append(batch, r)
				continue
			}
			n, err := db.recordOne(ctx, tx, r, now)
			if err != nil {
				return err
			}
			applied += n
		}
		n, err := db.recordChunks(ctx, tx, batch, now)
		applied += n
		if err != nil {
			return err
		}
		return db.suppressBounces(ctx, tx, results, now)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: record %d results: %w", len(results), err)
	}
	return applied, nil
}

// recordChunks writes results (no refunds, no id twice) with the largest
// prepared multi-row statements that fit.
func (db *DB) recordChunks(ctx context.Context, tx *sql.Tx, results []store.AttemptResult, now time.Time) (int, error) {
	applied := 0
	args := make([]any, 0, recordParams*min(len(results), recordChunks[0]))
	for len(results) > 0 {
		i := 0
		for recordChunks[i] > len(results) {
			i++
		}
		chunk := results[:recordChunks[i]]
		results = results[len(chunk):]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.DeliveryID, int64(r.Attempt), string(r.State), ms(r.NextAt),
				string(r.Class), string(r.Step), int64(r.Code), r.Enhanced, r.Text, r.Host, r.Via,
				r.MessageID, r.PossibleDuplicate, ms(r.Time(now)))
		}
		res, err := tx.StmtContext(ctx, db.q.recordBatch[i]).ExecContext(ctx, args...)
		if err != nil {
			return applied, fmt.Errorf("deliveries %d…%d: %w", chunk[0].DeliveryID, chunk[len(chunk)-1].DeliveryID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return applied, err
		}
		applied += int(n)
	}
	return applied, nil
}

// recordOne writes one result with queries/record.sql or, for a refund,
// queries/record_refund.sql.
func (db *DB) recordOne(ctx context.Context, tx *sql.Tx, r store.AttemptResult, now time.Time) (int, error) {
	var (
		res sql.Result
		err error
	)
	if r.Refund {
		res, err = tx.StmtContext(ctx, db.q.recordRefund).ExecContext(ctx,
			sql.Named("id", r.DeliveryID), sql.Named("attempt", r.Attempt),
			sql.Named("state", string(r.State)), sql.Named("next_at", ms(r.NextAt)),
			sql.Named("at", ms(r.Time(now))))
	} else {
		res, err = tx.StmtContext(ctx, db.q.record).ExecContext(ctx,
			sql.Named("id", r.DeliveryID), sql.Named("attempt", r.Attempt),
			sql.Named("state", string(r.State)), sql.Named("next_at", ms(r.NextAt)),
			sql.Named("class", string(r.Class)), sql.Named("step", string(r.Step)), sql.Named("code", r.Code),
			sql.Named("enhanced", r.Enhanced), sql.Named("text", r.Text),
			sql.Named("host", r.Host), sql.Named("via", r.Via),
			sql.Named("message_id", r.MessageID),
			sql.Named("possible_duplicate", r.PossibleDuplicate),
			sql.Named("at", ms(r.Time(now))))
	}
	if err != nil {
		return 0, fmt.Errorf("delivery %d: %w", r.DeliveryID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delivery %d: %w", r.DeliveryID, err)
	}
	return int(n), nil
}

// suppressBounces puts the keys of the applied hard bounces among results
// on the suppression list, in Record's transaction.
func (db *DB) suppressBounces(ctx context.Context, tx *sql.Tx, results []store.AttemptResult, now time.Time) error {
	var stmt *sql.Stmt
	for _, r := range results {
		if !r.Suppress || r.State != queue.Failed {
			continue
		}
		if stmt == nil {
			stmt = tx.StmtContext(ctx, db.q.suppressionBounce)
		}
		if _, err := stmt.ExecContext(ctx, sql.Named("id", r.DeliveryID), sql.Named("attempt", r.Attempt),
			sql.Named("reason", store.ReasonHardBounce), sql.Named("source", store.SourceBounce),
			sql.Named("code", r.Code), sql.Named("enhanced", r.Enhanced), sql.Named("text", r.Text),
			sql.Named("at", ms(r.Time(now)))); err != nil {
			return fmt.Errorf("suppress delivery %d: %w", r.DeliveryID, err)
		}
	}
	return nil
}
