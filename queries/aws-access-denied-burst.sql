-- id: aws-access-denied-burst
-- title: Burst of access-denied calls from one principal
-- severity: medium
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1580, T1069.003
-- dedup: account_id, actor_principal
-- summary: {actor_principal} was denied {denied} calls within 5 minutes in account {account_id}
-- window: 5m
-- lateness: 15m
-- evasions: outcome
-- controls: aws-permission-probing
--
-- Twenty calls denied to one principal within five minutes: someone probing what a
-- stolen credential may do. The alert is raised by the call that makes the twentieth
-- denial in five minutes (ordered by time, then id) and names the twenty; a burst that
-- goes on raises it again each time a new five minutes holds twenty.
SELECT event_id, time, account_id, region, actor_principal, operation, resource,
       denied, event_ids
FROM (
    SELECT d.event_id, d.time, d.account_id, d.region, d.actor_principal, d.operation,
           d.resource,
           count(p.event_id) AS denied,
           array_agg(p.event_id) AS event_ids
    FROM window_events d
    JOIN window_events p
      ON p.actor_principal = d.actor_principal
     AND p.account_id = d.account_id
     AND p.time > d.time - INTERVAL '5 minutes'
     AND (p.time < d.time OR (p.time = d.time AND p.event_id <= d.event_id))
    WHERE d.outcome = 'failure'
      AND d.provider = 'aws'
      AND d.error_code IN ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation',
                           'Client.UnauthorizedOperation', 'UnauthorizedAccess')
      AND p.outcome = 'failure'
      AND p.provider = 'aws'
      AND p.error_code IN ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation',
                           'Client.UnauthorizedOperation', 'UnauthorizedAccess')
    GROUP BY d.event_id, d.time, d.account_id, d.region, d.actor_principal, d.operation,
             d.resource
) crossing
WHERE denied = 20
