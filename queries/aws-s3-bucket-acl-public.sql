-- id: aws-s3-bucket-acl-public
-- title: S3 bucket ACL grants access to everyone
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas, saas
-- attack: T1530
-- dedup: account_id, resource
-- summary: {actor_principal} made bucket {resource} public through its ACL in account {account_id}
-- evasions: whole-policy, outcome
-- controls: aws-s3-bucket-acl
--
-- A grant to the AllUsers or AuthenticatedUsers group (`Grant` may be one object or a
-- list), or a public canned ACL, or such a grant given in a request header.
-- Buckets meant to be public (a website, a public dataset) are listed, each with its
-- owner, reason and expiry, in the allow table `public_buckets`.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 's3.amazonaws.com'
  AND operation = 'PutBucketAcl'
  AND outcome = 'success'
  AND aws_acl_public(request)
  AND NOT EXISTS (SELECT 1 FROM allow.public_buckets known
                  WHERE known.bucket = json_get_str(events.request, 'bucketName'))
