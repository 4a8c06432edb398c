-- id: aws-cloudtrail-logging-stopped
-- title: CloudTrail logging stopped or trail deleted
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on trail {resource} in account {account_id}
--
-- The audit trail is the customer's record of every API call; stopping or deleting it
-- blinds every other detection. Failed attempts are left to a separate rule.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'cloudtrail.amazonaws.com'
  AND operation IN ('StopLogging', 'DeleteTrail')
  AND outcome = 'success'
