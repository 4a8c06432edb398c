-- id: aws-admin-policy-attached
-- title: AdministratorAccess attached to a user, role or group
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098
-- dedup: account_id, resource
-- summary: {actor_principal} attached AdministratorAccess to {resource} in account {account_id}
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy')
  AND json_get_str(request, 'policyArn') = 'arn:aws:iam::aws:policy/AdministratorAccess'
  AND outcome = 'success'
