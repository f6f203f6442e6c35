-- message_save: keep (or replace) the rendered message of a delivery of the
-- campaign; no row is written when the delivery is not the campaign's.
INSERT INTO messages (delivery_id, campaign_id, message_id, data)
SELECT id, campaign_id, :message_id, :data
FROM deliveries
WHERE id = :delivery AND campaign_id = :campaign
ON CONFLICT (delivery_id) DO UPDATE SET message_id = excluded.message_id, data = excluded.data
