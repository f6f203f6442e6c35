-- subscriber_delete: one subscriber of a list.
DELETE FROM subscribers WHERE list_id = :list AND id = :id
