-- campaign_name_taken: is :name used by a campaign?
SELECT 1 FROM campaigns WHERE name = :name
