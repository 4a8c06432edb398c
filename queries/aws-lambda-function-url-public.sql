-- id: aws-lambda-function-url-public
-- title: Lambda function URL without authentication, or a function anyone may invoke
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} let anyone invoke function {resource} in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-lambda-url-auth, aws-lambda-resource-policy
--
-- A function URL with auth type NONE, or a resource-policy statement (`AddPermission`)
-- for principal `*` with no source or organisation condition, on the URL (auth type NONE)
-- or on the function itself. Lambda appends its API version to event names
-- (`CreateFunctionUrlConfig20211031`, `AddPermission20150331v2`).
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'lambda.amazonaws.com'
  AND regexp_like(operation, '^((Create|Update)FunctionUrlConfig|AddPermission)([0-9]{8}.*)?$')
  AND outcome = 'success'
  AND (
       json_get_str(request, 'authType') = 'NONE'
    OR (regexp_like(operation, '^AddPermission')
        AND json_get_str(request, 'principal') = '*'
        AND json_get_str(request, 'sourceArn') IS NULL
        AND json_get_str(request, 'sourceAccount') IS NULL
        AND json_get_str(request, 'principalOrgID') IS NULL
        AND (json_get_str(request, 'action') IN ('lambda:InvokeFunction', 'lambda:*')
             OR (json_get_str(request, 'action') = 'lambda:InvokeFunctionUrl'
                 AND json_get_str(request, 'functionUrlAuthType') = 'NONE')))
  )
