-- id: gcp-sa-impersonation-granted
-- title: Service account impersonation granted
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098
-- dedup: account_id, resource
-- summary: {actor_principal} granted impersonation of {resource}
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'iam.googleapis.com'
  AND regexp_like(operation, '(^|\.)SetIamPolicy$', 'i')
  AND outcome = 'success'
  AND gcp_adds_role(additional, 'roles/iam.serviceAccountTokenCreator', 'roles/iam.serviceAccountUser')
