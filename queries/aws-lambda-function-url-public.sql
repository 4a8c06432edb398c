-- id: aws-lambda-function-url-public
-- title: Lambda function URL without authentication
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} opened an unauthenticated URL for function {resource} in account {account_id}
--
-- Lambda appends its API version to event names (`CreateFunctionUrlConfig20211031`).
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'lambda.amazonaws.com'
  AND regexp_like(operation, '^(Create|Update)FunctionUrlConfig([0-9]{8}.*)?$')
  AND outcome = 'success'
  AND json_get_str(request, 'authType') = 'NONE'
