-- id: aws-encryption-key-disabled
-- title: KMS key disabled or scheduled for deletion, or default encryption turned off
-- severity: high
-- category: encryption-weakened
-- srm-layer: encryption
-- service-models: iaas, paas, saas
-- attack: T1485, T1562
-- dedup: account_id, operation, resource
-- summary: {actor_principal} ran {operation} on {resource} in account {account_id}
-- evasions: outcome
-- controls: aws-kms-keys, aws-ebs-default-encryption, aws-s3-default-encryption
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND outcome = 'success'
  AND (
       (service = 'kms.amazonaws.com' AND operation IN ('DisableKey', 'ScheduleKeyDeletion'))
    OR (service = 'ec2.amazonaws.com' AND operation = 'DisableEbsEncryptionByDefault')
    OR (service = 's3.amazonaws.com' AND operation = 'DeleteBucketEncryption')
  )
