-- id: aws-console-login-without-mfa
-- title: IAM user signed in to the console without MFA
-- severity: medium
-- category: identity-weakened
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1078.004
-- dedup: account_id, actor_principal
-- summary: IAM user {actor_principal} signed in to the console without MFA from {src_ip}
-- evasions: outcome
-- controls: aws-console-mfa
--
-- Federated and IAM Identity Center sessions authenticate at their identity provider,
-- so only IAM users (and root, covered by its own rule) count here.
SELECT event_id, time, account_id, region, actor_principal, src_ip
FROM events
WHERE provider = 'aws'
  AND service = 'signin.amazonaws.com'
  AND operation = 'ConsoleLogin'
  AND outcome = 'success'
  AND mfa = false
  AND actor_type = 'IAMUser'
