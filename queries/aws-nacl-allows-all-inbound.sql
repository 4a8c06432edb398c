-- id: aws-nacl-allows-all-inbound
-- title: Network ACL allows all inbound traffic from the internet
-- severity: medium
-- category: network-exposure
-- srm-layer: network
-- service-models: iaas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} allowed all inbound traffic from the internet in {resource}, account {account_id}
-- evasions: network-coverage, outcome
-- controls: aws-network-acl-inbound
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'ec2.amazonaws.com'
  AND operation IN ('CreateNetworkAclEntry', 'ReplaceNetworkAclEntry')
  AND outcome = 'success'
  AND json_as_text(request, 'egress') = 'false'
  AND lower(json_get_str(request, 'ruleAction')) = 'allow'
  AND coalesce(json_as_text(request, 'aclProtocol'), json_as_text(request, 'protocol')) IN ('-1', 'all')
  -- Any block with a /0 prefix (`0.0.0.0/0`, `::/0`) is the whole internet.
  AND coalesce(json_get_str(request, 'cidrBlock'), json_get_str(request, 'ipv6CidrBlock')) LIKE '%/0'
