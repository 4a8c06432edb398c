-- id: aws-cloudtrail-selectors-exclude-management
-- title: CloudTrail trail narrowed: management writes, other regions or global services no longer recorded
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} narrowed what trail {resource} records in account {account_id}
-- evasions: api-defaults, outcome, catalog-variant
-- controls: aws-cloudtrail-selectors
--
-- Selectors of which none records management write events (basic ones with
-- `includeManagementEvents` false or `readWriteType` ReadOnly; advanced ones without a
-- Management selector, or with it confined to read-only calls), or a trail updated to one
-- region or without global service events. Omitted selector fields take their defaults.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'cloudtrail.amazonaws.com'
  AND operation IN ('PutEventSelectors', 'UpdateTrail')
  AND outcome = 'success'
  AND aws_trail_narrowed(request)
