-- campaign_exists: does campaign :campaign exist?
SELECT 1 FROM campaigns WHERE id = :campaign
