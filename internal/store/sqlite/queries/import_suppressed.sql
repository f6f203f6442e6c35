-- import_suppressed: at the end of an import, recipients on the suppression
-- list, by address or by domain ("@" and the domain), are stored
-- suppressed, with the reason they were suppressed for.
UPDATE deliveries
SET state = 'suppressed',
	text = coalesce(
		(SELECT s.reason FROM suppressions AS s WHERE s."key" = deliveries."key"),
		(SELECT s.reason FROM suppressions AS s WHERE s."key" = '@' || deliveries.domain))
WHERE campaign_id = :campaign
	AND ("key" IN (SELECT "key" FROM suppressions)
		OR '@' || domain IN (SELECT "key" FROM suppressions))
