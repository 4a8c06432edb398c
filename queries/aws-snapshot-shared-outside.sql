-- id: aws-snapshot-shared-outside
-- title: Snapshot or image shared with an account outside the organisation
-- severity: medium
-- category: public-exposure
-- srm-layer: data
-- service-models: iaas, paas
-- attack: T1537
-- dedup: account_id, resource
-- summary: {actor_principal} shared {resource} with an outside account in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-snapshot-sharing
--
-- An EBS snapshot, an AMI or an RDS snapshot shared with an account that is neither
-- this one nor listed in the allow table `trusted_accounts` (the organisation's
-- accounts). Sharing with everyone (`all`) is the high-severity rules' business.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND outcome = 'success'
  AND (
       (service = 'ec2.amazonaws.com'
        AND operation IN ('ModifySnapshotAttribute', 'ModifyImageAttribute'))
    OR (service = 'rds.amazonaws.com'
        AND operation IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute'))
  )
  AND aws_shares_outside(request, account_id,
                         (SELECT string_agg(account_id, ',') FROM allow.trusted_accounts))
