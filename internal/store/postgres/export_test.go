package postgres

import (
	"context"

	"mailout/internal/store"
)

// SetCampaignStatusForTest stores a campaign's status without the core
// methods.
func (db *DB) SetCampaignStatusForTest(ctx context.Context, id int64, s store.CampaignStatus) error {
	_, err := db.pool.Exec(ctx, `UPDATE campaigns SET status = $2 WHERE id = $1`, id, string(s))
	return err
}
