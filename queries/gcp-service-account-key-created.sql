-- id: gcp-service-account-key-created
-- title: Service-account key or HMAC key created
-- severity: medium
-- category: credential-exposure
-- srm-layer: identity
-- service-models: iaas, paas
-- attack: T1098.001
-- dedup: account_id, resource
-- summary: {actor_principal} created a key for service account {resource} in {account_id}
-- evasions: outcome, catalog-variant
-- controls: gcp-sa-keys
--
-- A user-managed key (created, or uploaded from a key pair the caller holds) or a Cloud
-- Storage HMAC key is a long-lived credential that leaves Google's control the moment
-- it is handed out. Method names carry version prefixes: match the method.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND (
       (service = 'iam.googleapis.com'
        AND regexp_like(operation, '(^|\.)(Create|Upload)ServiceAccountKey$'))
    -- HMAC keys (Cloud Storage's S3-compatible API) exist only for service accounts.
    OR (service = 'storage.googleapis.com' AND operation = 'storage.hmacKeys.create')
  )
  AND outcome = 'success'
