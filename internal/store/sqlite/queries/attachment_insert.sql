-- attachment_insert: one attachment of a campaign, in order.
INSERT INTO attachments (campaign_id, name, content_type, data)
VALUES (:campaign, :name, :content_type, :data)
