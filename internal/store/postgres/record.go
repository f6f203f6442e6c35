package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// recordSQL applies the outcomes of attempts, one per element of the
// parallel arrays, fenced: a row is updated only while it is still
// sending with the attempt number it was claimed with, so a late or
// duplicate result is a no-op. The Message-ID is fixed by the first
// attempt that reports one; PossibleDuplicate, once set, stays set; the
// crash count is reset (the attempt ended without a crash). A row due
// again never gets next_at 0, which Counts would read as "no time".
// Every id appears at most once (UPDATE … FROM updates a row once, with
// an arbitrary one of its matches).
const recordSQL = `UPDATE deliveries AS d
SET state = r.state,
	next_at = CASE WHEN r.state IN ('pending', 'deferred') THEN greatest(r.next_at, 1) ELSE r.next_at END,
	attempts = r.attempt,
	lease_owner = '',
	lease_until = 0,
	class = r.class,
	step = r.step,
	code = r.code,
	enhanced = r.enhanced,
	text = r.text,
	host = r.host,
	via = r.via,
	message_id = CASE WHEN d.message_id = '' THEN r.message_id ELSE d.message_id END,
	possible_duplicate = d.possible_duplicate OR r.dup,
	crashes = 0,
	updated_at = r.at,
	delivered_at = CASE WHEN r.state = 'delivered' THEN r.at ELSE d.delivered_at END
FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::integer[],
	$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::bigint[])
	AS r(id, attempt, state, next_at, class, step, code, enhanced, text, host, via, message_id, dup, at)
WHERE d.id = r.id AND d.state = 'sending' AND d.attempts = r.attempt`

// refundSQL: the attempt never started; the row goes back to waiting with
// its attempt counter decremented and its previous outcome kept. Same
// fence as recordSQL.
const refundSQL = `UPDATE deliveries AS d
SET state = r.state,
	next_at = greatest(r.next_at, 1),
	attempts = d.attempts - 1,
	lease_owner = '',
	lease_until = 0,
	updated_at = r.at
FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[])
	AS r(id, attempt, state, next_at, at)
WHERE d.id = r.id AND d.state = 'sending' AND d.attempts = r.attempt`

// suppressBouncesSQL: in Record's transaction, each hard bounce whose
// result applied (the row is failed at the result's attempt) puts the
// recipient's key on the suppression list with the campaign and the
// server's reply. The first entry for a key is kept, in the results'
// order. Keys are inserted in key order, so two batches inserting the
// same keys wait for each other instead of deadlocking.
const suppressBouncesSQL = `INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
SELECT d."key", $1, $2, c.name, r.code, r.enhanced, r.text, r.at
FROM unnest($3::bigint[], $4::integer[], $5::integer[], $6::text[], $7::text[], $8::bigint[])
	WITH ORDINALITY AS r(id, attempt, code, enhanced, text, at, ord)
JOIN deliveries AS d ON d.id = r.id AND d.state = 'failed' AND d.attempts = r.attempt
JOIN campaigns AS c ON c.id = d.campaign_id
ORDER BY d."key" COLLATE "C", r.ord
ON CONFLICT ("key") DO NOTHING`

// Record applies the results in one transaction, each fenced by its
// attempt number, and returns how many applied. The whole batch is one
// round trip: the outcomes go as arrays to one UPDATE (refunds to a
// second one), and the hard bounces to one INSERT, sent together as a
// pgx batch. A batch that names a delivery twice, where the order of the
// results decides which one applies, is written one result per
// statement, in the order given (still one round trip).
func (db *DB) Record(ctx context.Context, results []store.AttemptResult) (int, error) {
	for _, r := range results {
		if err := r.Check(); err != nil {
			return 0, fmt.Errorf("postgres: record delivery %d: %w", r.DeliveryID, err)
		}
	}
	if len(results) == 0 {
		return 0, nil
	}
	now := time.Now()
	b := &pgx.Batch{}
	// The rows still sending are locked in id order first, as
	// ReleaseLeases locks them: the UPDATEs below take them in the
	// results' order, which against a concurrent release of the same rows
	// could deadlock. Rows in other states are not locked: the fence
	// skips them, and Requeue or DueNow may be writing them.
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.DeliveryID
	}
	slices.Sort(ids)
	b.Queue(`SELECT 1 FROM deliveries WHERE id = ANY($1::bigint[]) AND state = 'sending' ORDER BY id FOR UPDATE`, ids)
	if store.HasDuplicateIDs(results) {
		for _, r := range results {
			queueRecord(b, []store.AttemptResult{r}, now)
		}
	} else {
		var refunds, outcomes []store.AttemptResult
		for _, r := range results {
			if r.Refund {
				refunds = append(refunds, r)
			} else {
				outcomes = append(outcomes, r)
			}
		}
		queueRecord(b, refunds, now)
		queueRecord(b, outcomes, now)
	}
	updates := b.Len() // the lock, then the updates
	queueSuppressBounces(b, results, now)

	var applied int
	err := db.writeRetry(ctx, func(tx pgx.Tx) error {
		applied = 0
		br := tx.SendBatch(ctx, b)
		for i := 0; i < b.Len(); i++ {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if i > 0 && i < updates {
				applied += int(tag.RowsAffected())
			}
		}
		return br.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: record %d results: %w", len(results), err)
	}
	return applied, nil
}

// queueRecord adds the statement that applies rs, all refunds or all
// outcomes, to b; nothing when rs is empty.
func queueRecord(b *pgx.Batch, rs []store.AttemptResult, now time.Time) {
	if len(rs) == 0 {
		return
	}
	n := len(rs)
	ids, attempts, states := make([]int64, n), make([]int32, n), make([]string, n)
	nextAts, ats := make([]int64, n), make([]int64, n)
	for i, r := range rs {
		ids[i], attempts[i], states[i] = r.DeliveryID, int32(r.Attempt), string(r.State)
		nextAts[i], ats[i] = ms(r.NextAt), ms(r.Time(now))
	}
	if rs[0].Refund {
		b.Queue(refundSQL, ids, attempts, states, nextAts, ats)
		return
	}
	classes, steps, codes := make([]string, n), make([]string, n), make([]int32, n)
	enhanced, texts, hosts, vias := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	mids, dups := make([]string, n), make([]bool, n)
	for i, r := range rs {
		classes[i], steps[i], codes[i] = string(r.Class), string(r.Step), int32(r.Code)
		enhanced[i], texts[i], hosts[i], vias[i] = r.Enhanced, r.Text, r.Host, r.Via
		mids[i], dups[i] = r.MessageID, r.PossibleDuplicate
	}
	b.Queue(recordSQL, ids, attempts, states, nextAts, classes, steps, codes, enhanced, texts, hosts, vias, mids, dups, ats)
}

// queueSuppressBounces adds the INSERT of the hard bounces among results
// to b; nothing when there are none.
func queueSuppressBounces(b *pgx.Batch, results []store.AttemptResult, now time.Time) {
	var (
		ids, ats        []int64
		attempts, codes []int32
		enhanced, texts []string
	)
	for _, r := range results {
		if !r.Suppress || r.State != queue.Failed {
			continue
		}
		ids, attempts, codes = append(ids, r.DeliveryID), append(attempts, int32(r.Attempt)), append(codes, int32(r.Code))
		enhanced, texts, ats = append(enhanced, r.Enhanced), append(texts, r.Text), append(ats, ms(r.Time(now)))
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(suppressBouncesSQL, store.ReasonHardBounce, store.SourceBounce, ids, attempts, codes, enhanced, texts, ats)
}
