-- campaigns_list: every campaign, newest first, without message bodies.
SELECT id, name, created_at, status, status_reason, route, route_config, profile,
	max_age_ms, retry_min_ms, NULL, template_name, NULL, html_name, diagnosis, start_at
FROM campaigns
ORDER BY created_at DESC, id DESC
