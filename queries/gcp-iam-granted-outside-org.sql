-- id: gcp-iam-granted-outside-org
-- title: Role granted to an account outside the organisation
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.003
-- dedup: account_id, resource
-- summary: {actor_principal} granted a role on {resource} to an account outside the organisation
--
-- A user, group or domain whose domain is neither the granting principal's nor one
-- listed in the third argument (comma-separated): list the organisation's domains there.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'cloudresourcemanager.googleapis.com'
  AND regexp_like(operation, '(^|\.)SetIamPolicy$')
  AND outcome = 'success'
  AND gcp_adds_outsider(additional, actor_principal, '')
