-- id: aws-s3-access-logging-removed
-- title: S3 server access logging turned off
-- severity: medium
-- category: logging-disabled
-- srm-layer: logging
-- service-models: paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} turned off access logging for bucket {resource} in account {account_id}
-- evasions: outcome
-- controls: aws-s3-access-logging
--
-- A `BucketLoggingStatus` without `LoggingEnabled` removes the logging configuration.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 's3.amazonaws.com'
  AND operation = 'PutBucketLogging'
  AND outcome = 'success'
  AND json_get_json(request, 'BucketLoggingStatus', 'LoggingEnabled') IS NULL
