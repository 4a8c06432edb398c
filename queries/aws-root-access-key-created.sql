-- id: aws-root-access-key-created
-- title: Access key created for the root user
-- severity: critical
-- category: credential-exposure
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.001
-- dedup: account_id
-- summary: an access key was created for the root user of account {account_id}
-- evasions: outcome
-- controls: aws-root-access-keys
--
-- CreateAccessKey without a userName, made by the root user, mints a key for root.
SELECT event_id, time, account_id, region, actor_principal, operation
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation = 'CreateAccessKey'
  AND actor_type = 'Root'
  AND json_get_str(request, 'userName') IS NULL
  AND outcome = 'success'
