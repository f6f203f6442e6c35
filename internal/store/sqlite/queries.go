package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
)

//go:embed queries/*.sql
var queryFiles embed.FS

// importBatch is how many recipients one INSERT statement carries during an
// import: 9 parameters a row keeps it far below SQLite's 32766-parameter
// limit, and it makes the per-statement cost (a cgo-free call through
// database/sql) negligible next to the B-tree work.
const importBatch = 100

// recordChunks are the sizes, largest first, of the prepared multi-row
// Record statements (queries/record_batch.sql); a batch of results is cut
// into chunks of these sizes. 64 is the scheduler's batch; 14 parameters a
// result keep the largest at 896 parameters.
var recordChunks = [...]int{64, 16, 4, 1}

// queries holds every statement, prepared on the handle that runs it.
type queries struct {
	// writer
	campaignExistsW, campaignStartAt, campaignNameTaken, campaignInsert, attachmentInsert *sql.Stmt
	deliveryInsert, deliveryInsertBatch, importSuppressed                                 *sql.Stmt
	campaignSetStatus, campaignSetDiagnosis, campaignSetRouteConfig                       *sql.Stmt
	claim, record, recordRefund, releaseLeases, requeue, dueNow                           *sql.Stmt
	claimCursor, claimFresh, claimInsert, claimsExpired, claimRelease                     *sql.Stmt
	claimDelete                                                                           *sql.Stmt
	messageSave, suppressionInsert, suppressionDelete, suppressionBounce                  *sql.Stmt
	suppressionGetW, suppressionsAny, claimSuppressed, requeueSuppressed                  *sql.Stmt
	claimSuspect                                                                          *sql.Stmt
	listInsert, listNameTaken, listRename, listDelete, listColumnsW                       *sql.Stmt
	listSetColumns, subscribersCountW, subscriberUpsert, subscriberUpsertBatch            *sql.Stmt
	subscriberKeyTaken, subscriberUpdate, subscriberDelete                                *sql.Stmt
	// recordBatch[i] updates recordChunks[i] results at once.
	recordBatch [len(recordChunks)]*sql.Stmt
	// readers
	campaignExistsR, campaignGet, campaignGetByName, campaignsList, attachmentsList            *sql.Stmt
	countsByState, countsFailedByClass, countsNextDue, countsClaimed                           *sql.Stmt
	deliveriesList, domainsList, domainTallies, messagesList, suppressionGet, suppressionsList *sql.Stmt
	listGet, listsList, listExists, subscribersList, subscriberGet                             *sql.Stmt

	all []*sql.Stmt
}

// prepare prepares every query file on its handle. SQLite compiles the
// statement at prepare time, so a syntax error or an unknown column fails

// stmtSpec is one statement of a set: the database it runs on, its query
// file and where the prepared statement goes.
type stmtSpec struct {
	db   *sql.DB
	name string
	dst  **sql.Stmt
}

// prepareSet prepares every statement of specs, appending each to all; on
// an error it closes those already prepared.
func prepareSet(ctx context.Context, specs []stmtSpec, all *[]*sql.Stmt) error {
	for _, p := range specs {
		text, err := queryText(p.name)
		if err == nil {
			*p.dst, err = p.db.PrepareContext(ctx, text)
		}
		if err != nil {
			closeSet(*all)
			*all = nil
			return fmt.Errorf("prepare %s: %w", p.name, err)
		}
		*all = append(*all, *p.dst)
	}
	return nil
}

// closeSet closes every statement of a set.
func closeSet(all []*sql.Stmt) error {
	var errs []error
	for _, s := range all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// here, at start-up.
func prepare(ctx context.Context, w, r *sql.DB) (*queries, error) {
	q := &queries{}
	insert, err := queryText("delivery_insert")
	if err != nil {
		return nil, err
	}
	batch, err := repeatValues(insert, importBatch)
	if err != nil {
		return nil, err
	}
	type prep struct {
		db   *sql.DB
		name string
		text string // overrides the file's text
		dst  **sql.Stmt
	}
	upsert, err := queryText("subscriber_upsert")
	if err != nil {
		return nil, err
	}
	upsertBatch, err := repeatTuple(upsert, importBatch)
	if err != nil {
		return nil, err
	}
	recordBatch, err := queryText("record_batch")
	if err != nil {
		return nil, err
	}
	var chunks []prep
	for i, n := range recordChunks {
		text, err := repeatTuple(recordBatch, n)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, prep{w, "record_batch", text, &q.recordBatch[i]})
	}
	for _, p := range append([]prep{
		{w, "campaign_exists", "", &q.campaignExistsW},
		{w, "campaign_start_at", "", &q.campaignStartAt},
		{w, "campaign_name_taken", "", &q.campaignNameTaken},
		{w, "campaign_insert", "", &q.campaignInsert},
		{w, "attachment_insert", "", &q.attachmentInsert},
		{w, "delivery_insert", "", &q.deliveryInsert},
		{w, "delivery_insert", batch, &q.deliveryInsertBatch},
		{w, "import_suppressed", "", &q.importSuppressed},
		{w, "campaign_set_status", "", &q.campaignSetStatus},
		{w, "campaign_set_diagnosis", "", &q.campaignSetDiagnosis},
		{w, "campaign_set_route_config", "", &q.campaignSetRouteConfig},
		{w, "claim", "", &q.claim},
		{w, "claim_cursor", "", &q.claimCursor},
		{w, "claim_suspect", "", &q.claimSuspect},
		{w, "claim_fresh", "", &q.claimFresh},
		{w, "claim_insert", "", &q.claimInsert},
		{w, "claims_expired", "", &q.claimsExpired},
		{w, "claim_release", "", &q.claimRelease},
		{w, "claim_delete", "", &q.claimDelete},
		{w, "record", "", &q.record},
		{w, "record_refund", "", &q.recordRefund},
		{w, "release_leases", "", &q.releaseLeases},
		{w, "requeue", "", &q.requeue},
		{w, "due_now", "", &q.dueNow},
		{w, "message_save", "", &q.messageSave},
		{w, "suppression_insert", "", &q.suppressionInsert},
		{w, "suppression_delete", "", &q.suppressionDelete},
		{w, "suppression_bounce", "", &q.suppressionBounce},
		{w, "suppression_get", "", &q.suppressionGetW},
		{w, "suppressions_any", "", &q.suppressionsAny},
		{w, "claim_suppressed", "", &q.claimSuppressed},
		{w, "requeue_suppressed", "", &q.requeueSuppressed},
		{w, "list_insert", "", &q.listInsert},
		{w, "list_name_taken", "", &q.listNameTaken},
		{w, "list_rename", "", &q.listRename},
		{w, "list_delete", "", &q.listDelete},
		{w, "list_columns", "", &q.listColumnsW},
		{w, "list_set_columns", "", &q.listSetColumns},
		{w, "subscribers_count", "", &q.subscribersCountW},
		{w, "subscriber_upsert", "", &q.subscriberUpsert},
		{w, "subscriber_upsert", upsertBatch, &q.subscriberUpsertBatch},
		{w, "subscriber_key_taken", "", &q.subscriberKeyTaken},
		{w, "subscriber_update", "", &q.subscriberUpdate},
		{w, "subscriber_delete", "", &q.subscriberDelete},
		{r, "campaign_exists", "", &q.campaignExistsR},
		{r, "campaign_get", "", &q.campaignGet},
		{r, "campaign_get_by_name", "", &q.campaignGetByName},
		{r, "campaigns_list", "", &q.campaignsList},
		{r, "attachments_list", "", &q.attachmentsList},
		{r, "counts_by_state", "", &q.countsByState},
		{r, "counts_failed_by_class", "", &q.countsFailedByClass},
		{r, "counts_next_due", "", &q.countsNextDue},
		{r, "counts_claimed", "", &q.countsClaimed},
		{r, "deliveries_list", "", &q.deliveriesList},
		{r, "domains_list", "", &q.domainsList},
		{r, "domain_tallies", "", &q.domainTallies},
		{r, "messages_list", "", &q.messagesList},
		{r, "suppression_get", "", &q.suppressionGet},
		{r, "suppressions_list", "", &q.suppressionsList},
		{r, "list_get", "", &q.listGet},
		{r, "lists_list", "", &q.listsList},
		{r, "list_exists", "", &q.listExists},
		{r, "subscribers_list", "", &q.subscribersList},
		{r, "subscriber_get", "", &q.subscriberGet},
	}, chunks...) {
		text := p.text
		if text == "" {
			if text, err = queryText(p.name); err != nil {
				q.close()
				return nil, err
			}
		}
		stmt, err := p.db.PrepareContext(ctx, text)
		if err != nil {
			q.close()
			return nil, fmt.Errorf("prepare %s: %w", p.name, err)
		}
		*p.dst = stmt
		q.all = append(q.all, stmt)
	}
	return q, nil
}

func queryText(name string) (string, error) {
	b, err := queryFiles.ReadFile("queries/" + name + ".sql")
	if err != nil {
		return "", fmt.Errorf("query %s: %w", name, err)
	}
	return string(b), nil
}

// repeatValues turns a one-row "INSERT … VALUES (…)" into an n-row one by
// repeating the tuple that follows the last VALUES keyword.
func repeatValues(insert string, n int) (string, error) {
	i := strings.LastIndex(strings.ToUpper(insert), "VALUES")
	if i < 0 {
		return "", errors.New("delivery_insert: no VALUES clause")
	}
	tuple := strings.TrimSpace(insert[i+len("VALUES"):])
	if !strings.HasPrefix(tuple, "(") || !strings.HasSuffix(tuple, ")") {
		return "", errors.New("delivery_insert: VALUES must end the statement with one tuple")
	}
	var b strings.Builder
	b.WriteString(insert[:i+len("VALUES")])
	for k := range n {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n\t")
		b.WriteString(tuple)
	}
	return b.String(), nil
}

// repeatTuple turns a statement whose last VALUES keyword, anywhere in it,
// is followed by one tuple into one with n copies of that tuple. The tuple
// holds no parentheses.
func repeatTuple(text string, n int) (string, error) {
	i := strings.LastIndex(strings.ToUpper(text), "VALUES")
	if i < 0 {
		return "", errors.New("no VALUES clause")
	}
	open := strings.IndexByte(text[i:], '(')
	end := strings.IndexByte(text[i:], ')')
	if open < 0 || end < open {
		return "", errors.New("VALUES without a tuple")
	}
	open, end = i+open, i+end+1
	tuple := text[open:end]
	if strings.Count(tuple, "(") != 1 {
		return "", errors.New("VALUES tuple holds a parenthesis")
	}
	var b strings.Builder
	b.WriteString(text[:open])
	for k := range n {
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	b.WriteString(text[end:])
	return b.String(), nil
}

func (q *queries) close() error {
	var errs []error
	for _, s := range q.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
