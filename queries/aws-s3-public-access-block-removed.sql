-- id: aws-s3-public-access-block-removed
-- title: S3 Block Public Access removed or weakened
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas, saas
-- attack: T1562
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on {resource} in account {account_id}
-- evasions: api-defaults, outcome
-- controls: aws-s3-block-public-access
--
-- A Put replaces the whole configuration: a flag it leaves out is stored as false, so
-- any of the four not given as true weakens the block.
--
-- Buckets meant to be public (a website, a public dataset) are listed, each with its
-- owner, reason and expiry, in the allow table `public_buckets`.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 's3.amazonaws.com'
  AND operation IN ('DeleteBucketPublicAccessBlock', 'PutBucketPublicAccessBlock',
                    'DeleteAccountPublicAccessBlock', 'PutAccountPublicAccessBlock')
  AND outcome = 'success'
  AND (
       operation LIKE 'Delete%'
    OR NOT array_has(json_values(request, 'PublicAccessBlockConfiguration.BlockPublicAcls'), 'true')
    OR NOT array_has(json_values(request, 'PublicAccessBlockConfiguration.IgnorePublicAcls'), 'true')
    OR NOT array_has(json_values(request, 'PublicAccessBlockConfiguration.BlockPublicPolicy'), 'true')
    OR NOT array_has(json_values(request, 'PublicAccessBlockConfiguration.RestrictPublicBuckets'), 'true')
  )
  AND NOT EXISTS (SELECT 1 FROM allow.public_buckets known
                  WHERE known.bucket = json_get_str(events.request, 'bucketName'))
