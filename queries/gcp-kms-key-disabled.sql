-- id: gcp-kms-key-disabled
-- title: Cloud KMS key version disabled or destroyed
-- severity: high
-- category: encryption-weakened
-- srm-layer: encryption
-- service-models: iaas, paas, saas
-- attack: T1485
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on {resource}
-- evasions: outcome, catalog-variant
-- controls: gcp-kms-key-versions
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'cloudkms.googleapis.com'
  AND outcome = 'success'
  AND (
       regexp_like(operation, '(^|\.)DestroyCryptoKeyVersion$')
    OR (regexp_like(operation, '(^|\.)UpdateCryptoKeyVersion$')
        AND json_get_str(request, 'cryptoKeyVersion', 'state') IN ('DISABLED', 'DESTROY_SCHEDULED', 'DESTROYED'))
  )
