-- id: gcp-iam-public-binding
-- title: IAM policy grants access to allUsers or allAuthenticatedUsers
-- severity: critical
-- category: public-exposure
-- srm-layer: data
-- service-models: iaas, paas, saas
-- attack: T1530
-- dedup: account_id, resource
-- summary: {actor_principal} granted public access to {resource} in {account_id}
-- evasions: whole-policy, outcome
-- controls: gcp-storage-iam-public, gcp-resource-iam-public
--
-- Any service's SetIamPolicy (Cloud Storage logs `storage.setIamPermissions`) that
-- grants a public member: a binding delta that ADDs one, or, for services that log only
-- the whole new policy (Cloud Run, Cloud Functions, Compute images…), a binding of the
-- new policy that holds one.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND regexp_like(operation, '(^|\.)(SetIamPolicy|setIamPermissions)$', 'i')
  AND outcome = 'success'
  AND gcp_adds_member(gcp_iam_changes(additional, request, response), 'allUsers', 'allAuthenticatedUsers')
