-- id: gcp-owner-or-editor-granted
-- title: Owner or Editor granted, or any role at organisation or folder level
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.003
-- dedup: account_id, resource
-- summary: {actor_principal} granted a privileged role on {resource}
-- evasions: whole-policy, outcome
-- controls: gcp-owner-editor-grants
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'cloudresourcemanager.googleapis.com'
  AND regexp_like(operation, '(^|\.)SetIamPolicy$')
  AND outcome = 'success'
  AND (
       gcp_adds_role(gcp_iam_changes(additional, request, response), 'roles/owner', 'roles/editor')
    OR (regexp_like(resource, '^(organizations|folders)/')
        AND gcp_adds_any(gcp_iam_changes(additional, request, response)))
  )
