-- campaign_set_route_config
UPDATE campaigns SET route_config = :route_config WHERE id = :campaign
