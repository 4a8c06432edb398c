-- id: aws-s3-public-access-block-removed
-- title: S3 Block Public Access removed or weakened
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas, saas
-- attack: T1562
-- dedup: account_id, resource
-- summary: {actor_principal} ran {operation} on {resource} in account {account_id}
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
    OR array_has(json_values(request, 'PublicAccessBlockConfiguration.BlockPublicAcls'), 'false')
    OR array_has(json_values(request, 'PublicAccessBlockConfiguration.IgnorePublicAcls'), 'false')
    OR array_has(json_values(request, 'PublicAccessBlockConfiguration.BlockPublicPolicy'), 'false')
    OR array_has(json_values(request, 'PublicAccessBlockConfiguration.RestrictPublicBuckets'), 'false')
  )
  AND NOT EXISTS (SELECT 1 FROM allow.public_buckets known
                  WHERE known.bucket = json_get_str(events.request, 'bucketName'))
