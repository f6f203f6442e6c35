-- campaign_start_at: when campaign :campaign starts sending (0: at once).
SELECT start_at FROM campaigns WHERE id = :campaign
