-- id: aws-logging-sources-disabled
-- title: Config recording, flow logs or GuardDuty turned off
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas
-- attack: T1562.008
-- dedup: account_id, operation, resource
-- summary: {actor_principal} ran {operation} on {resource} in account {account_id}
-- evasions: outcome
-- controls: aws-config-recorder, aws-vpc-flow-logs, aws-guardduty
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND outcome = 'success'
  AND (
       (service = 'config.amazonaws.com'
        AND operation IN ('StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel'))
    -- A call whose every flow log failed (listed under `unsuccessful`, with no
    -- `errorCode`) deleted nothing.
    OR (service = 'ec2.amazonaws.com' AND operation = 'DeleteFlowLogs'
        AND NOT (cardinality(json_values(request, 'DeleteFlowLogsRequest.FlowLogId.content')) > 0
                 AND cardinality(json_values(response, 'DeleteFlowLogsResponse.unsuccessful.item.resourceId'))
                     >= cardinality(json_values(request, 'DeleteFlowLogsRequest.FlowLogId.content'))))
    OR (service = 'guardduty.amazonaws.com' AND operation = 'DeleteDetector')
    OR (service = 'guardduty.amazonaws.com' AND operation = 'UpdateDetector'
        AND json_as_text(request, 'enable') = 'false')
  )
