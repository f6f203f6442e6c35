package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"mailout/internal/store"
)

// Feedback counts the campaign's accepted messages, complaints and later
// bounces.
func (db *DB) Feedback(ctx context.Context, campaignID int64) (store.Feedback, error) {
	var f store.Feedback
	err := db.cq.campaignFeedback.QueryRowContext(ctx, sql.Named("campaign", campaignID)).Scan(&f.Delivered, &f.Complaints, &f.LaterBounces)
	if err != nil {
		return f, fmt.Errorf("sqlite: feedback of campaign %d: %w", campaignID, err)
	}
	return f, nil
}
