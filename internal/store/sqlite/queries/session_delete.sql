-- session_delete: sign one session out.
DELETE FROM sessions WHERE id = :id
