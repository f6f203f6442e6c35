-- subscribers_count: how many subscribers a list has. An import counts
-- the rows it added as the growth of this count.
SELECT count(*) FROM subscribers WHERE list_id = :list
