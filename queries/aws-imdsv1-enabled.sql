-- id: aws-imdsv1-enabled
-- title: IMDSv1 re-enabled (instance metadata tokens optional)
-- severity: medium
-- category: credential-exposure
-- srm-layer: configuration
-- service-models: iaas
-- attack: T1552.005
-- dedup: account_id, resource
-- summary: {actor_principal} made metadata tokens optional with {operation} on {resource} in account {account_id}
-- evasions: outcome
-- controls: aws-imdsv2-required
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'ec2.amazonaws.com'
  AND operation IN ('ModifyInstanceMetadataOptions', 'ModifyInstanceMetadataDefaults')
  AND outcome = 'success'
  AND lower(coalesce(
        json_get_str(request, 'ModifyInstanceMetadataOptionsRequest', 'HttpTokens'),
        json_get_str(request, 'ModifyInstanceMetadataDefaultsRequest', 'HttpTokens'),
        json_get_str(request, 'httpTokens'))) = 'optional'
