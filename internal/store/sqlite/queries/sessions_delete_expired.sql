-- sessions_delete_expired: drop the sessions that ended at or before :now.
DELETE FROM sessions WHERE expires_at <= :now
