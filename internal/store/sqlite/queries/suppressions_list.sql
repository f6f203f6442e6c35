-- suppressions_list: the whole suppression list in key order.
SELECT "key", reason, source, campaign, code, enhanced, text, created_at
FROM suppressions
ORDER BY "key"
