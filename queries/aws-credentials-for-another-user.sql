-- id: aws-credentials-for-another-user
-- title: Access key or console password created for another IAM user
-- severity: high
-- category: credential-exposure
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.001
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} for IAM user {resource} in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-user-credentials
--
-- A long-lived credential minted on someone else's identity is a backdoor that
-- outlives the caller's own access. A call without `userName` acts on the caller;
-- an IAM user acting on itself is its own business.
SELECT event_id, time, account_id, region, actor_principal, operation,
       json_get_str(request, 'userName') AS resource
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation IN ('CreateAccessKey', 'CreateLoginProfile', 'UpdateLoginProfile')
  AND outcome = 'success'
  AND json_get_str(request, 'userName') IS NOT NULL
  AND NOT (actor_type = 'IAMUser'
           AND reverse(split_part(reverse(actor_principal), '/', 1)) = json_get_str(request, 'userName'))
