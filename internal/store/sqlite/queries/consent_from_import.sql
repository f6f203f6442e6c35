-- consent_from_import: one consent log entry (subscribe, the import's
-- source) for every subscriber an import added to the list: those with an id
-- above the highest before it (subscribers_max_id). An updated
-- subscriber was subscribed already and gets none.
INSERT INTO consents (list_id, email, "key", action, source, created_at)
SELECT list_id, email, "key", 'subscribe', :source, :at
FROM subscribers
WHERE list_id = :list AND id > :before
ORDER BY id
