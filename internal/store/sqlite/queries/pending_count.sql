-- pending_count: subscriptions asked for an address since a time.
SELECT count(*) FROM pending_subscriptions WHERE "key" = :key AND created_at >= :since
