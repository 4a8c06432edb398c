-- id: aws-password-policy-deleted
-- title: Account password policy deleted
-- severity: medium
-- category: identity-weakened
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1556
-- dedup: account_id
-- summary: {actor_principal} deleted the password policy of account {account_id}
-- evasions: outcome
-- controls: aws-password-policy
SELECT event_id, time, account_id, region, actor_principal, operation
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation = 'DeleteAccountPasswordPolicy'
  AND outcome = 'success'
