package postgres

import (
	"context"
	"fmt"
)

// messagePage is how many kept messages one query of Messages reads:
// fewer than pageSize, as each carries a whole message.
const messagePage = 100

// SaveMessage keeps the rendered message of one delivery (sandbox route),
// replacing an earlier one. It returns store.ErrNotFound when the delivery
// is not one of the campaign's.
func (db *DB) SaveMessage(ctx context.Context, campaignID, deliveryID int64, messageID string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	err := db.execOne(ctx, `INSERT INTO messages (delivery_id, campaign_id, message_id, data)
SELECT id, campaign_id, $3, $4 FROM deliveries WHERE id = $2 AND campaign_id = $1
ON CONFLICT (delivery_id) DO UPDATE SET message_id = excluded.message_id, data = excluded.data`,
		campaignID, deliveryID, messageID, data)
	if err != nil {
		return fmt.Errorf("postgres: save message of delivery %d (campaign %d): %w", deliveryID, campaignID, err)
	}
	return nil
}

// Messages streams the kept messages of a campaign in delivery order, a
// page at a time (keyset paging by delivery id); an error from fn stops
// the walk and is returned as is.
func (db *DB) Messages(ctx context.Context, campaignID int64, fn func(deliveryID int64, email, messageID string, data []byte) error) error {
	if err := campaignExists(ctx, db.pool, campaignID); err != nil {
		return fmt.Errorf("postgres: messages of campaign %d: %w", campaignID, err)
	}
	type kept struct {
		id         int64
		email, mid string
		data       []byte
	}
	var after int64
	for {
		rows, err := db.pool.Query(ctx, `SELECT m.delivery_id, d.email, m.message_id, m.data
FROM messages AS m
JOIN deliveries AS d ON d.id = m.delivery_id
WHERE m.campaign_id = $1 AND m.delivery_id > $2
ORDER BY m.delivery_id
LIMIT $3`, campaignID, after, messagePage)
		if err != nil {
			return fmt.Errorf("postgres: messages of campaign %d: %w", campaignID, err)
		}
		var page []kept
		for rows.Next() {
			var k kept
			if err := rows.Scan(&k.id, &k.email, &k.mid, &k.data); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: messages of campaign %d: %w", campaignID, err)
			}
			page = append(page, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: messages of campaign %d: %w", campaignID, err)
		}
		for _, k := range page {
			if err := fn(k.id, k.email, k.mid, k.data); err != nil {
				return err
			}
		}
		if len(page) < messagePage {
			return nil
		}
		after = page[len(page)-1].id
	}
}
