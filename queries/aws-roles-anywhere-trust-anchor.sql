-- id: aws-roles-anywhere-trust-anchor
-- title: IAM Roles Anywhere trusts a certificate authority outside the account
-- severity: high
-- category: credential-exposure
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098
-- dedup: account_id, resource
-- summary: {actor_principal} made an outside certificate authority a trust anchor ({operation}) in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-roles-anywhere-trust
--
-- A trust anchor from a certificate bundle (or any source but a Private CA), or from a
-- Private CA of another account, lets whoever holds that CA mint AWS credentials for
-- the roles its profiles allow.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'rolesanywhere.amazonaws.com'
  AND operation IN ('CreateTrustAnchor', 'UpdateTrustAnchor')
  AND outcome = 'success'
  -- An update that leaves the source alone names none.
  AND json_get_str(request, 'source', 'sourceType') IS NOT NULL
  AND (
       json_get_str(request, 'source', 'sourceType') <> 'AWS_ACM_PCA'
    OR split_part(json_get_str(request, 'source', 'sourceData', 'acmPcaArn'), ':', 5) <> account_id
  )
