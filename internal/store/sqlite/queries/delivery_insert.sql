-- delivery_insert: recipients of an import. Positional parameters, one
-- parenthesised tuple per row: campaign_id, line, email, domain, key, fields,
-- next_at, created_at, updated_at. The code repeats the tuple after VALUES to
-- insert many rows per statement. next_at is 0: never claimed
-- (0002_claims.sql).
INSERT INTO deliveries (campaign_id, line, email, domain, "key", fields, state, next_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
