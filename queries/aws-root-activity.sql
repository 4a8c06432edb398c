-- id: aws-root-activity
-- title: Root user signed in or made a change
-- severity: high
-- category: root-activity
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1078.004
-- dedup: account_id, operation
-- summary: the root user of account {account_id} ran {operation} from {src_ip}
-- evasions: outcome, service-driven
-- controls: aws-root-user
--
-- Calls AWS services make on the root user's behalf carry `invokedBy`, and events a
-- service records itself are `AwsServiceEvent`s: neither is a person using root.
SELECT event_id, time, account_id, region, actor_principal, operation, src_ip
FROM events
WHERE provider = 'aws'
  AND actor_type = 'Root'
  AND actor_invoked_by IS NULL
  AND coalesce(event_type, '') <> 'AwsServiceEvent'
  AND outcome = 'success'
  AND (operation = 'ConsoleLogin' OR read_only IS DISTINCT FROM true)
