package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// SaveMessage keeps the rendered message of one delivery (sandbox route),
// replacing an earlier one. It returns store.ErrNotFound when the delivery
// is not one of the campaign's.
func (db *DB) SaveMessage(ctx context.Context, campaignID, deliveryID int64, messageID string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	err := db.execOne(ctx, db.q.messageSave,
		sql.Named("campaign", campaignID), sql.Named("delivery", deliveryID),
		sql.Named("message_id", messageID), sql.Named("data", data))
	if err != nil {
		return fmt.Errorf("sqlite: save message of delivery %d (campaign %d): %w", deliveryID, campaignID, err)
	}
	return nil
}

// Messages streams the kept messages of a campaign in delivery order; an
// error from fn stops the walk and is returned as is.
func (db *DB) Messages(ctx context.Context, campaignID int64, fn func(deliveryID int64, email, messageID string, data []byte) error) error {
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := campaignExists(ctx, tx, db.q.campaignExistsR, campaignID); err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.q.messagesList).QueryContext(ctx, sql.Named("campaign", campaignID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id         int64
				email, mid string
				data       []byte
			)
			if err := rows.Scan(&id, &email, &mid, &data); err != nil {
				return err
			}
			if fnErr = fn(id, email, mid, data); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: messages of campaign %d: %w", campaignID, err)
	}
	return nil
}
