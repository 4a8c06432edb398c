-- id: aws-cloudtrail-logging-stopped
-- title: CloudTrail logging stopped or trail deleted
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on trail {resource} in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-cloudtrail-logging
--
-- A trail stopped or deleted, or a CloudTrail Lake event data store stopped or deleted.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'cloudtrail.amazonaws.com'
  AND operation IN ('StopLogging', 'DeleteTrail', 'StopEventDataStoreIngestion', 'DeleteEventDataStore')
  AND outcome = 'success'
