-- id: gcp-firewall-admin-port-open
-- title: Firewall rule opens an admin port to the internet
-- severity: high
-- category: network-exposure
-- srm-layer: network
-- service-models: iaas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} opened an admin port to the internet with {resource}
-- evasions: api-defaults, network-coverage, outcome
-- controls: gcp-firewall-admin-ports
--
-- An enabled ingress rule whose sources together cover the internet (`0.0.0.0/0`, or
-- `0.0.0.0/1` with `128.0.0.0/1`; an insert with no source at all gets `0.0.0.0/0`)
-- allowing an admin port, or all.
-- Only the first part of the compute operation carries the request.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'compute.googleapis.com'
  AND regexp_like(operation, '(^|\.)compute\.firewalls\.(insert|patch|update)$')
  AND outcome = 'success'
  AND gcp_firewall_admin_open(request, operation)
