package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailout/internal/route"
	"mailout/internal/store"
)

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// ImportCampaign creates the campaign and all its recipients in one
// transaction (after a crash the import is complete or absent). The
// recipients are streamed to the server with COPY, one row in memory at a
// time; the suppression list is applied by two UPDATEs at the end (by
// address key, then by domain), inside the same transaction.
func (db *DB) ImportCampaign(ctx context.Context, c *store.Campaign, next func() (*store.NewRecipient, error)) error {
	if c == nil || c.Name == "" {
		return errors.New("postgres: import campaign: a name is required")
	}
	if c.Status == "" {
		c.Status = store.CampaignRunning
	}
	if !validStatus(c.Status) {
		return fmt.Errorf("postgres: import campaign %q: unknown status %q", c.Name, c.Status)
	}
	created := now()
	var id int64
	err := db.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO campaigns (name, created_at, status, status_reason, route, route_config,
	profile, max_age_ms, retry_min_ms, template, template_name, html, html_name, diagnosis, start_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING id`,
			c.Name, ms(created), string(c.Status), c.StatusReason, string(c.Route), c.RouteConfig,
			c.Profile, c.MaxAge.Milliseconds(), c.RetryMin.Milliseconds(), c.Message.Template,
			c.Message.TemplateName, c.Message.HTML, c.Message.HTMLName, c.Diagnosis, ms(c.StartAt),
		).Scan(&id)
		if isUnique(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		for _, a := range c.Message.Attachments {
			if _, err := tx.Exec(ctx, `INSERT INTO attachments (campaign_id, name, content_type, data) VALUES ($1, $2, $3, $4)`,
				id, a.Name, a.ContentType, a.Data); err != nil {
				return fmt.Errorf("attachment %q: %w", a.Name, err)
			}
		}
		if err := copyRecipients(ctx, tx, id, created, next); err != nil {
			return err
		}
		return suppressImported(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("postgres: import campaign %q: %w", c.Name, err)
	}
	c.ID = id
	c.CreatedAt = created
	return nil
}

// copyRecipients streams next() into the deliveries table with one COPY.
// A fresh row is pending and due at its import time.
func copyRecipients(ctx context.Context, tx pgx.Tx, campaign int64, created time.Time, next func() (*store.NewRecipient, error)) error {
	at := ms(created)
	n := 0
	var nextErr error
	row := make([]any, 10)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		r, err := next()
		if err != nil {
			nextErr = fmt.Errorf("recipient %d: %w", n+1, err)
			return nil, nextErr
		}
		if r == nil {
			return nil, nil
		}
		n++
		fields := r.Fields
		if fields == nil {
			fields = map[string]string{} // JSON null is not an object
		}
		row[0], row[1], row[2], row[3], row[4] = campaign, int32(r.Line), r.Email, r.Domain, r.Key
		row[5], row[6], row[7], row[8], row[9] = fields, "pending", at, at, at
		return row, nil
	})
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"deliveries"},
		[]string{"campaign_id", "line", "email", "domain", "key", "fields", "state", "next_at", "created_at", "updated_at"}, src)
	if nextErr != nil {
		return nextErr // the source's own error, for errors.Is
	}
	if err != nil {
		return fmt.Errorf("copy recipients: %w", err)
	}
	return nil
}

// suppressImported stores the campaign's recipients that are on the
// suppression list as suppressed, with the reason of their entry: the
// address's own entry first, then its domain's ("@" and the domain).
func suppressImported(ctx context.Context, tx pgx.Tx, campaign int64) error {
	var any bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions)`).Scan(&any); err != nil || !any {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries AS d SET state = 'suppressed', text = s.reason
FROM suppressions AS s
WHERE d.campaign_id = $1 AND s."key" = d."key"`, campaign); err != nil {
		return fmt.Errorf("suppressed addresses: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries AS d SET state = 'suppressed', text = s.reason
FROM suppressions AS s
WHERE d.campaign_id = $1 AND d.state = 'pending' AND s."key" = '@' || d.domain`, campaign); err != nil {
		return fmt.Errorf("suppressed domains: %w", err)
	}
	return nil
}

func validStatus(s store.CampaignStatus) bool {
	switch s {
	case store.CampaignRunning, store.CampaignPaused, store.CampaignDone, store.CampaignCancelled:
		return true
	}
	return false
}

// campaignColumns are the columns scanCampaign reads; campaignListColumns
// the same without the message bodies.
const (
	campaignColumns = `id, name, created_at, status, status_reason, route, route_config, profile,
	max_age_ms, retry_min_ms, template, template_name, html, html_name, diagnosis, start_at`
	campaignListColumns = `id, name, created_at, status, status_reason, route, route_config, profile,
	max_age_ms, retry_min_ms, NULL::bytea, template_name, NULL::bytea, html_name, diagnosis, start_at`
)

// Campaign returns the campaign with its message and attachments.
func (db *DB) Campaign(ctx context.Context, id int64) (*store.Campaign, error) {
	c, err := db.campaign(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: campaign %d: %w", id, err)
	}
	return c, nil
}

// CampaignByName returns the campaign with its message and attachments.
func (db *DB) CampaignByName(ctx context.Context, name string) (*store.Campaign, error) {
	c, err := db.campaign(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE name = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("postgres: campaign %q: %w", name, err)
	}
	return c, nil
}

func (db *DB) campaign(ctx context.Context, query string, arg any) (*store.Campaign, error) {
	var c *store.Campaign
	err := db.read(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = scanCampaign(tx.QueryRow(ctx, query, arg)); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT name, content_type, data FROM attachments WHERE campaign_id = $1 ORDER BY id`, c.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a store.Attachment
			if err := rows.Scan(&a.Name, &a.ContentType, &a.Data); err != nil {
				return err
			}
			c.Message.Attachments = append(c.Message.Attachments, a)
		}
		return rows.Err()
	})
	return c, err
}

// Campaigns lists every campaign, newest first, without message bodies
// and attachments.
func (db *DB) Campaigns(ctx context.Context) ([]store.Campaign, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+campaignListColumns+` FROM campaigns ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("postgres: campaigns: %w", err)
	}
	defer rows.Close()
	var out []store.Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: campaigns: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: campaigns: %w", err)
	}
	return out, nil
}

// scanCampaign reads the columns of campaignColumns.
func scanCampaign(row pgx.Row) (*store.Campaign, error) {
	var (
		c                     store.Campaign
		created, age, retry   int64
		startAt               int64
		status, rt            string
		tmplName, htmlName    string
		template, html        []byte
		routeCfg, prof, diagn []byte
	)
	if err := row.Scan(&c.ID, &c.Name, &created, &status, &c.StatusReason, &rt, &routeCfg, &prof,
		&age, &retry, &template, &tmplName, &html, &htmlName, &diagn, &startAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.StartAt = fromMS(created), fromMS(startAt)
	c.Status = store.CampaignStatus(status)
	c.Route = route.Route(rt)
	c.RouteConfig, c.Profile, c.Diagnosis = routeCfg, prof, diagn
	c.MaxAge = time.Duration(age) * time.Millisecond
	c.RetryMin = time.Duration(retry) * time.Millisecond
	c.Message = store.Message{Template: template, TemplateName: tmplName, HTML: html, HTMLName: htmlName}
	return &c, nil
}

// SetCampaignStatus changes the campaign's status and the reason shown for it.
func (db *DB) SetCampaignStatus(ctx context.Context, id int64, status store.CampaignStatus, reason string) error {
	if !validStatus(status) {
		return fmt.Errorf("postgres: campaign %d: unknown status %q", id, status)
	}
	if err := db.execOne(ctx, `UPDATE campaigns SET status = $2, status_reason = $3 WHERE id = $1`, id, string(status), reason); err != nil {
		return fmt.Errorf("postgres: campaign %d: set status %s: %w", id, status, err)
	}
	return nil
}

// SetDiagnosis stores the doctor's report for the campaign.
func (db *DB) SetDiagnosis(ctx context.Context, id int64, diagnosis []byte) error {
	if err := db.execOne(ctx, `UPDATE campaigns SET diagnosis = $2 WHERE id = $1`, id, diagnosis); err != nil {
		return fmt.Errorf("postgres: campaign %d: set diagnosis: %w", id, err)
	}
	return nil
}

// SetRouteConfig replaces the campaign's route settings.
func (db *DB) SetRouteConfig(ctx context.Context, id int64, routeConfig []byte) error {
	if err := db.execOne(ctx, `UPDATE campaigns SET route_config = $2 WHERE id = $1`, id, routeConfig); err != nil {
		return fmt.Errorf("postgres: campaign %d: set route settings: %w", id, err)
	}
	return nil
}

// execOne runs one write statement (its own transaction); no row changed
// is store.ErrNotFound.
func (db *DB) execOne(ctx context.Context, sql string, args ...any) error {
	tag, err := db.pool.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// campaignExists returns store.ErrNotFound when the campaign does not
// exist.
func campaignExists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id int64) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1)`, id).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}
