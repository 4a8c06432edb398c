-- id: aws-admin-policy-attached
-- title: Administrator access granted to a user, role or group
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098
-- dedup: account_id, resource
-- summary: {actor_principal} granted administrator access with {operation} on {resource} in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-iam-admin-grants
--
-- The managed AdministratorAccess policy attached (in any partition: aws, aws-cn,
-- aws-us-gov), an inline policy allowing every action on every resource, or such a
-- document made the default version of a customer policy.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy',
                    'PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy', 'CreatePolicyVersion')
  AND outcome = 'success'
  AND (
       regexp_like(json_get_str(request, 'policyArn'), '^arn:aws(-[a-z]+)*:iam::aws:policy/AdministratorAccess$')
    OR (operation LIKE 'Put%Policy' AND aws_policy_admin(json_get_json(request, 'policyDocument')))
    OR (operation = 'CreatePolicyVersion'
        AND json_as_text(request, 'setAsDefault') = 'true'
        AND aws_policy_admin(json_get_json(request, 'policyDocument')))
  )
