-- id: gcp-sa-impersonation-granted
-- title: Service account impersonation granted
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098
-- dedup: account_id, resource
-- summary: {actor_principal} granted impersonation of {resource}
-- evasions: outcome, catalog-variant
-- controls: gcp-sa-impersonation
--
-- Token Creator, Service Account User or Workload Identity User added on a service
-- account, or on a project, where it lets the member act as every service account in
-- it (the default Compute one, often an Editor, included).
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service IN ('iam.googleapis.com', 'cloudresourcemanager.googleapis.com')
  AND regexp_like(operation, '(^|\.)SetIamPolicy$', 'i')
  AND outcome = 'success'
  AND gcp_adds_role(gcp_iam_changes(additional, request, response),
                    'roles/iam.serviceAccountTokenCreator', 'roles/iam.serviceAccountUser',
                    'roles/iam.workloadIdentityUser')
