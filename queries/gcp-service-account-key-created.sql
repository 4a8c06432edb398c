-- id: gcp-service-account-key-created
-- title: Service-account key created
-- severity: medium
-- category: credential-exposure
-- srm-layer: identity
-- service-models: iaas, paas
-- attack: T1098.001
-- dedup: account_id, resource
-- summary: {actor_principal} created a key for service account {resource} in {account_id}
--
-- A user-managed key is a long-lived credential that leaves Google's control the
-- moment it is downloaded. Method names carry version prefixes: match the method.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'iam.googleapis.com'
  AND regexp_like(operation, '(^|\.)CreateServiceAccountKey$')
  AND outcome = 'success'
