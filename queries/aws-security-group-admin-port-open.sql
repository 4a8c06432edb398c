-- id: aws-security-group-admin-port-open
-- title: Security group opens an admin port to the internet
-- severity: high
-- category: network-exposure
-- srm-layer: network
-- service-models: iaas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} opened an admin port to the internet on {resource} in account {account_id}
-- evasions: network-coverage, outcome
-- controls: aws-security-group-admin-ports
--
-- The request's CIDR blocks together covering the IPv4 or IPv6 internet (`0.0.0.0/0`,
-- or `0.0.0.0/1` with `128.0.0.0/1`) on a port range covering 21, 22, 23, 445, 3306,
-- 3389, 5432, 5985, 5986, 6379, 9200 or 27017, or on every protocol (`-1`). A rule
-- modified in place (`ModifySecurityGroupRules`) counts when it names an admin port: its
-- request does not say ingress or egress, and every protocol to everyone is the default
-- egress rule.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'ec2.amazonaws.com'
  AND operation IN ('AuthorizeSecurityGroupIngress', 'ModifySecurityGroupRules')
  AND outcome = 'success'
  AND aws_ingress_admin_open(request)
