-- import_suppressed: at the end of an import, recipients on the suppression
-- list are stored suppressed, with the reason they were suppressed for.
UPDATE deliveries
SET state = 'suppressed',
	text = (SELECT s.reason FROM suppressions AS s WHERE s."key" = deliveries."key")
WHERE campaign_id = :campaign
	AND "key" IN (SELECT "key" FROM suppressions)
