-- campaign_get_by_name: one campaign with its message bodies.
SELECT id, name, created_at, status, status_reason, route, route_config, profile,
	max_age_ms, retry_min_ms, template, template_name, html, html_name, diagnosis, start_at
FROM campaigns
WHERE name = :name
