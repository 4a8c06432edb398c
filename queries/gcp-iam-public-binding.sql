-- id: gcp-iam-public-binding
-- title: IAM policy grants access to allUsers or allAuthenticatedUsers
-- severity: critical
-- category: public-exposure
-- srm-layer: data
-- service-models: iaas, paas, saas
-- attack: T1530
-- dedup: account_id, resource
-- summary: {actor_principal} granted public access to {resource} in {account_id}
--
-- Any service's SetIamPolicy (Cloud Storage logs `storage.setIamPermissions`) with a
-- binding delta that ADDs a public member.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND regexp_like(operation, '(^|\.)(SetIamPolicy|setIamPermissions)$', 'i')
  AND outcome = 'success'
  AND gcp_adds_member(additional, 'allUsers', 'allAuthenticatedUsers')
