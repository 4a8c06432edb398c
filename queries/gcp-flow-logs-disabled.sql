-- id: gcp-flow-logs-disabled
-- title: VPC flow logs turned off on a subnetwork
-- severity: medium
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} turned off flow logs on {resource}
-- evasions: outcome
-- controls: gcp-vpc-flow-logs
--
-- Only the first part of the compute operation carries the request, so the last part
-- cannot match.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'compute.googleapis.com'
  AND regexp_like(operation, '(^|\.)compute\.subnetworks\.(patch|update)$')
  AND outcome = 'success'
  AND (json_as_text(request, 'logConfig', 'enable') = 'false'
       OR json_as_text(request, 'enableFlowLogs') = 'false')
