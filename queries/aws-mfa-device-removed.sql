-- id: aws-mfa-device-removed
-- title: MFA device deactivated or deleted
-- severity: high
-- category: identity-weakened
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1556.006
-- dedup: account_id, actor_principal, resource
-- summary: {actor_principal} ran {operation} on {resource} in account {account_id}
-- evasions: outcome
-- controls: aws-iam-mfa-devices
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')
  AND outcome = 'success'
