-- id: aws-dns-query-logging-removed
-- title: Route 53 Resolver DNS query logging removed
-- severity: medium
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas
-- attack: T1562.008
-- dedup: account_id, resource
-- summary: {actor_principal} removed DNS query logging ({operation}) in account {account_id}
-- evasions: outcome
-- controls: aws-dns-query-logging
--
-- A query-logging configuration deleted, or detached from a VPC: the VPC's DNS
-- lookups, often the only trace of exfiltration and command-and-control, stop being
-- recorded.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'route53resolver.amazonaws.com'
  AND operation IN ('DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig')
  AND outcome = 'success'
