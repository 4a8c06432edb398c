-- id: aws-cloudtrail-selectors-exclude-management
-- title: CloudTrail trail stops recording management events
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} excluded management events from trail {resource} in account {account_id}
--
-- Basic selectors that all set `includeManagementEvents` false, or advanced selectors of
-- which none selects `eventCategory` Management.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'cloudtrail.amazonaws.com'
  AND operation = 'PutEventSelectors'
  AND outcome = 'success'
  AND (
       (array_has(json_values(request, 'eventSelectors.includeManagementEvents'), 'false')
        AND NOT array_has(json_values(request, 'eventSelectors.includeManagementEvents'), 'true'))
    OR (json_get_json(request, 'advancedEventSelectors') IS NOT NULL
        AND NOT array_has(json_values(request, 'advancedEventSelectors.fieldSelectors.equals'), 'Management'))
  )
