-- id: aws-s3-bucket-policy-public
-- title: S3 bucket policy allows anyone
-- severity: critical
-- category: public-exposure
-- srm-layer: data
-- service-models: paas, saas
-- attack: T1530
-- dedup: account_id, resource
-- summary: {actor_principal} set a public policy on bucket {resource} in account {account_id}
-- evasions: policy-semantics, outcome
-- controls: aws-s3-bucket-policy
--
-- An `Allow` statement for principal `*` that no org, account, network or principal
-- condition confines. `Deny` statements for `*` are hardenings and do not match.
-- Buckets meant to be public (a website, a public dataset) are listed, each with its
-- owner, reason and expiry, in the allow table `public_buckets`.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 's3.amazonaws.com'
  AND operation = 'PutBucketPolicy'
  AND outcome = 'success'
  AND aws_policy_public(coalesce(json_get_json(request, 'bucketPolicy'), json_get_json(request, 'policy')))
  AND NOT EXISTS (SELECT 1 FROM allow.public_buckets known
                  WHERE known.bucket = json_get_str(events.request, 'bucketName'))
