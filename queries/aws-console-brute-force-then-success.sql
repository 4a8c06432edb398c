-- id: aws-console-brute-force-then-success
-- title: Console sign-in succeeded after ten or more failures
-- severity: high
-- category: identity-weakened
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1110
-- dedup: account_id, src_ip
-- summary: a console sign-in as {actor_principal} succeeded from {src_ip} in account {account_id} after {failures} failed attempts within 15 minutes
-- window: 15m
-- lateness: 15m
-- evasions: outcome
-- controls: aws-console-sign-in
--
-- Ten or more failed console sign-ins in an account, then a successful one from the
-- same address or as the same principal, all within 15 minutes: guessed or sprayed
-- passwords that worked. A failed sign-in names the principal by its id, a successful
-- one by its ARN, so the address is what ties most sequences together. The alert
-- names the success and every failure before it in the window.
SELECT s.event_id, s.time, s.account_id, s.region, s.actor_principal, s.src_ip,
       s.operation, s.resource,
       count(f.event_id) AS failures,
       array_agg(f.event_id) AS event_ids
FROM window_events s
JOIN window_events f
  ON f.account_id = s.account_id
 AND (f.src_ip = s.src_ip OR f.actor_principal = s.actor_principal)
 AND f.time <= s.time
 AND f.time >= s.time - INTERVAL '15 minutes'
WHERE s.provider = 'aws'
  AND s.service = 'signin.amazonaws.com'
  AND s.operation = 'ConsoleLogin'
  AND s.outcome = 'success'
  AND f.provider = 'aws'
  AND f.service = 'signin.amazonaws.com'
  AND f.operation = 'ConsoleLogin'
  AND f.outcome = 'failure'
GROUP BY s.event_id, s.time, s.account_id, s.region, s.actor_principal, s.src_ip,
         s.operation, s.resource
HAVING count(f.event_id) >= 10
