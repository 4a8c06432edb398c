-- id: aws-rds-snapshot-public
-- title: RDS snapshot shared with everyone
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas
-- attack: T1537
-- dedup: account_id, resource
-- summary: {actor_principal} made snapshot {resource} restorable by anyone in account {account_id}
-- evasions: outcome
-- controls: aws-rds-snapshot-public
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'rds.amazonaws.com'
  AND operation IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
  AND outcome = 'success'
  AND json_get_str(request, 'attributeName') = 'restore'
  AND array_has(json_values(request, 'valuesToAdd'), 'all')
