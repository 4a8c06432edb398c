-- id: aws-ec2-snapshot-or-image-public
-- title: EBS snapshot or AMI shared with everyone
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: iaas
-- attack: T1537
-- dedup: account_id, resource
-- summary: {actor_principal} made {resource} public with {operation} in account {account_id}
-- evasions: outcome
-- controls: aws-ebs-snapshot-ami-public
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'ec2.amazonaws.com'
  AND operation IN ('ModifySnapshotAttribute', 'ModifyImageAttribute')
  AND outcome = 'success'
  AND (
       array_has(json_values(request, 'createVolumePermission.add.items.group'), 'all')
    OR array_has(json_values(request, 'launchPermission.add.items.group'), 'all')
  )
