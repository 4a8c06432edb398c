-- id: gcp-log-sink-deleted
-- title: Log sink or log bucket deleted
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on {resource} in {account_id}
-- evasions: outcome
-- controls: gcp-log-sinks
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'logging.googleapis.com'
  AND regexp_like(operation, '(^|\.)ConfigServiceV2\.(DeleteSink|DeleteBucket)$')
  AND outcome = 'success'
