-- attachments_list: a campaign's attachments in the order they were added.
SELECT name, content_type, data
FROM attachments
WHERE campaign_id = :campaign
ORDER BY rowid
