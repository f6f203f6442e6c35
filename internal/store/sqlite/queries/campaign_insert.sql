-- campaign_insert: one new campaign; the id is the rowid.
INSERT INTO campaigns (
	name, created_at, status, status_reason, route, route_config, profile,
	max_age_ms, retry_min_ms, template, template_name, html, html_name, diagnosis, start_at
) VALUES (
	:name, :created_at, :status, :status_reason, :route, :route_config, :profile,
	:max_age_ms, :retry_min_ms, :template, :template_name, :html, :html_name, :diagnosis, :start_at
)
