-- id: gcp-log-sink-narrowed
-- title: Log sink disabled or filtered, or an exclusion added, to drop audit logs
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} disabled or narrowed log sink {resource} in {account_id}
-- evasions: log-routing, outcome
-- controls: gcp-log-sink-filters
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'logging.googleapis.com'
  AND regexp_like(operation, '(^|\.)ConfigServiceV2\.(UpdateSink|CreateExclusion|UpdateExclusion)$')
  AND outcome = 'success'
  AND gcp_sink_excludes_audit(request, operation)
