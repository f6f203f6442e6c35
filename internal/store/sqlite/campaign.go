package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mailout/internal/store"
)

// ImportCampaign creates the campaign and all its recipients in one
// transaction (after a crash the import is complete or absent).
// Recipients are inserted importBatch rows per statement; the
// suppression list is applied by one UPDATE at the end, inside the same
// transaction.
func (db *DB) ImportCampaign(ctx context.Context, c *store.Campaign, next func() (*store.NewRecipient, error)) error {
	if c == nil || c.Name == "" {
		return errors.New("sqlite: import campaign: a name is required")
	}
	if c.Status == "" {
		c.Status = store.CampaignRunning
	}
	if !validStatus(c.Status) {
		return fmt.Errorf("sqlite: import campaign %q: unknown status %q", c.Name, c.Status)
	}
	created := now()
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.StmtContext(ctx, db.q.campaignNameTaken).QueryRowContext(ctx, sql.Named("name", c.Name)).Scan(&one)
		if err == nil {
			return store.ErrExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.StmtContext(ctx, db.q.campaignInsert).ExecContext(ctx,
			sql.Named("name", c.Name),
			sql.Named("created_at", ms(created)),
			sql.Named("status", string(c.Status)),
			sql.Named("status_reason", c.StatusReason),
			sql.Named("route", string(c.Route)),
			sql.Named("route_config", c.RouteConfig),
			sql.Named("profile", c.Profile),
			sql.Named("max_age_ms", c.MaxAge.Milliseconds()),
			sql.Named("retry_min_ms", c.RetryMin.Milliseconds()),
			sql.Named("template", c.Message.Template),
			sql.Named("template_name", c.Message.TemplateName),
			sql.Named("html", c.Message.HTML),
			sql.Named("html_name", c.Message.HTMLName),
			sql.Named("diagnosis", c.Diagnosis),
			sql.Named("start_at", ms(c.StartAt)),
		)
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		att := tx.StmtContext(ctx, db.q.attachmentInsert)
		for _, a := range c.Message.Attachments {
			if _, err := att.ExecContext(ctx, sql.Named("campaign", id), sql.Named("name", a.Name),
				sql.Named("content_type", a.ContentType), sql.Named("data", a.Data)); err != nil {
				return fmt.Errorf("attachment %q: %w", a.Name, err)
			}
		}
		if err := db.insertRecipients(ctx, tx, id, created, next); err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, db.q.importSuppressed).ExecContext(ctx, sql.Named("campaign", id))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: import campaign %q: %w", c.Name, err)
	}
	c.ID = id
	c.CreatedAt = created
	return nil
}

// insertRecipients streams next() into the deliveries table, importBatch
// rows per statement, the rest one by one.
func (db *DB) insertRecipients(ctx context.Context, tx *sql.Tx, campaign int64, created time.Time, next func() (*store.NewRecipient, error)) error {
	const cols = 9 // see queries/delivery_insert.sql
	batch := tx.StmtContext(ctx, db.q.deliveryInsertBatch)
	one := tx.StmtContext(ctx, db.q.deliveryInsert)
	at := ms(created)
	args := make([]any, 0, cols*importBatch)
	for n := 0; ; n++ {
		r, err := next()
		if err != nil {
			return fmt.Errorf("recipient %d: %w", n+1, err)
		}
		if r == nil {
			break
		}
		fields, err := encodeFields(r.Fields)
		if err != nil {
			return fmt.Errorf("recipient %d (line %d): %w", n+1, r.Line, err)
		}
		args = append(args, campaign, r.Line, r.Email, r.Domain, r.Key, fields, 0, at, at)
		if len(args) == cap(args) {
			if _, err := batch.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert recipients up to line %d: %w", r.Line, err)
			}
			args = args[:0]
		}
	}
	for i := 0; i < len(args); i += cols {
		if _, err := one.ExecContext(ctx, args[i:i+cols]...); err != nil {
			return fmt.Errorf("insert recipient of line %v: %w", args[i+1], err)
		}
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

// Campaign returns the campaign with its message and attachments.
func (db *DB) Campaign(ctx context.Context, id int64) (*store.Campaign, error) {
	c, err := db.campaign(ctx, db.q.campaignGet, sql.Named("campaign", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: campaign %d: %w", id, err)
	}
	return c, nil
}

// CampaignByName returns the campaign with its message and attachments.
func (db *DB) CampaignByName(ctx context.Context, name string) (*store.Campaign, error) {
	c, err := db.campaign(ctx, db.q.campaignGetByName, sql.Named("name", name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: campaign %q: %w", name, err)
	}
	return c, nil
}

func (db *DB) campaign(ctx context.Context, get *sql.Stmt, arg sql.NamedArg) (*store.Campaign, error) {
	var c *store.Campaign
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCampaign(tx.StmtContext(ctx, get).QueryRowContext(ctx, arg))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.attachmentsList).QueryContext(ctx, sql.Named("campaign", c.ID))
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
	rows, err := db.q.campaignsList.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: campaigns: %w", err)
	}
	defer rows.Close()
	var out []store.Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: campaigns: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: campaigns: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

// scanCampaign reads the columns of queries/campaign_get.sql.
func scanCampaign(s scanner) (*store.Campaign, error) {
	var (
		c               store.Campaign
		created, age    int64
		retry           int64
		status          string
		template, html  []byte
		routeCfg, prof  []byte
		diagnosis       []byte
		tmplName, hName string
		startAt         int64
	)
	if err := s.Scan(&c.ID, &c.Name, &created, &status, &c.StatusReason, &c.Route, &routeCfg, &prof,
		&age, &retry, &template, &tmplName, &html, &hName, &diagnosis, &startAt); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMS(created)
	c.StartAt = fromMS(startAt)
	c.Status = store.CampaignStatus(status)
	c.RouteConfig, c.Profile, c.Diagnosis = routeCfg, prof, diagnosis
	c.MaxAge = time.Duration(age) * time.Millisecond
	c.RetryMin = time.Duration(retry) * time.Millisecond
	c.Message = store.Message{Template: template, TemplateName: tmplName, HTML: html, HTMLName: hName}
	return &c, nil
}

// SetCampaignStatus changes the campaign's status and the reason shown for it.
func (db *DB) SetCampaignStatus(ctx context.Context, id int64, status store.CampaignStatus, reason string) error {
	if !validStatus(status) {
		return fmt.Errorf("sqlite: campaign %d: unknown status %q", id, status)
	}
	err := db.execOne(ctx, db.q.campaignSetStatus, sql.Named("campaign", id),
		sql.Named("status", string(status)), sql.Named("reason", reason))
	if err != nil {
		return fmt.Errorf("sqlite: campaign %d: set status %s: %w", id, status, err)
	}
	return nil
}

// SetDiagnosis stores the doctor's report for the campaign.
func (db *DB) SetDiagnosis(ctx context.Context, id int64, diagnosis []byte) error {
	err := db.execOne(ctx, db.q.campaignSetDiagnosis, sql.Named("campaign", id), sql.Named("diagnosis", diagnosis))
	if err != nil {
		return fmt.Errorf("sqlite: campaign %d: set diagnosis: %w", id, err)
	}
	return nil
}

// SetRouteConfig replaces the campaign's route settings.
func (db *DB) SetRouteConfig(ctx context.Context, id int64, routeConfig []byte) error {
	err := db.execOne(ctx, db.q.campaignSetRouteConfig, sql.Named("campaign", id), sql.Named("route_config", routeConfig))
	if err != nil {
		return fmt.Errorf("sqlite: campaign %d: set route settings: %w", id, err)
	}
	return nil
}

// execOne runs one write statement in its own transaction; no row changed
// is store.ErrNotFound.
func (db *DB) execOne(ctx context.Context, stmt *sql.Stmt, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}
