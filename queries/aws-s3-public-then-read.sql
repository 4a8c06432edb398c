-- id: aws-s3-public-then-read
-- title: S3 bucket made public, then read from outside the account
-- severity: critical
-- category: public-exposure
-- srm-layer: data
-- service-models: paas, saas
-- attack: T1530
-- dedup: account_id, resource
-- summary: bucket {bucket} of account {account_id} was made public and read by {actor_principal} within the hour
-- window: 1h
-- lateness: 15m
-- evasions: outcome
-- controls: aws-s3-bucket-policy, aws-s3-bucket-acl
--
-- A bucket policy or ACL that lets anyone in, then, within the hour, an object read
-- (GetObject, from CloudTrail data events) by a caller outside the bucket's account:
-- another account, or anonymous (`AWSAccount` callers). The exposure was used, not
-- only opened. Raised by the first such read after the change; it names both events.
SELECT event_id, time, account_id, region, actor_principal, operation, resource, bucket,
       event_ids
FROM (
    SELECT r.event_id, r.time, r.account_id, r.region, r.actor_principal, r.operation,
           r.resource,
           json_get_str(r.request, 'bucketName') AS bucket,
           make_array(p.event_id) AS event_ids,
           row_number() OVER (PARTITION BY p.event_id ORDER BY r.time, r.event_id) AS nth
    FROM window_events r
    JOIN window_events p
      ON json_get_str(p.request, 'bucketName') = json_get_str(r.request, 'bucketName')
     AND p.account_id = r.account_id
     AND p.time <= r.time
     AND p.time >= r.time - INTERVAL '1 hour'
    WHERE r.provider = 'aws'
      AND r.service = 's3.amazonaws.com'
      AND r.operation = 'GetObject'
      AND r.outcome = 'success'
      AND (r.actor_type = 'AWSAccount'
           OR split_part(coalesce(r.actor_principal, ''), ':', 5) NOT IN ('', r.account_id))
      AND p.provider = 'aws'
      AND p.service = 's3.amazonaws.com'
      AND p.operation IN ('PutBucketPolicy', 'PutBucketAcl')
      AND p.outcome = 'success'
      AND CASE p.operation
              WHEN 'PutBucketPolicy' THEN aws_policy_public(coalesce(
                  json_get_json(p.request, 'bucketPolicy'), json_get_json(p.request, 'policy')))
              ELSE aws_acl_public(p.request)
          END
) reads
WHERE nth = 1
