package postgres

import (
	"context"
	"fmt"

	"mailout/internal/store"
)

// Feedback counts the campaign's accepted messages, complaints and later
// bounces.
func (db *DB) Feedback(ctx context.Context, campaignID int64) (store.Feedback, error) {
	var f store.Feedback
	err := db.pool.QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE complained_at != 0),
		count(*) FILTER (WHERE bounced_at != 0)
		FROM deliveries WHERE campaign_id = $1 AND delivered_at != 0`, campaignID).Scan(&f.Delivered, &f.Complaints, &f.LaterBounces)
	if err != nil {
		return f, fmt.Errorf("postgres: feedback of campaign %d: %w", campaignID, err)
	}
	return f, nil
}
