-- id: gcp-audit-logging-reduced
-- title: Data Access audit logging turned off or members exempted
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} reduced audit logging on {resource}
-- evasions: outcome
-- controls: gcp-data-access-audit-logs
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'cloudresourcemanager.googleapis.com'
  AND regexp_like(operation, '(^|\.)SetIamPolicy$')
  AND outcome = 'success'
  AND gcp_audit_logging_reduced(additional)
