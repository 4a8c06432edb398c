-- id: aws-role-trust-opened
-- title: Role trust policy lets anyone, or an outside account, assume the role
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.003
-- dedup: account_id, resource
-- summary: {actor_principal} let an outside principal assume role {resource} in account {account_id}
-- evasions: outcome, policy-semantics
-- controls: aws-role-trust
--
-- An `Allow` of `sts:AssumeRole*` to `*` that no organisation, account or principal
-- condition confines (an `sts:ExternalId` is a shared secret, not a bound), or to an
-- account that is neither this one nor listed in the allow table `trusted_accounts`.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'iam.amazonaws.com'
  AND operation IN ('UpdateAssumeRolePolicy', 'CreateRole')
  AND outcome = 'success'
  AND aws_trust_outside(coalesce(json_get_json(request, 'policyDocument'),
                                 json_get_json(request, 'assumeRolePolicyDocument')),
                        account_id,
                        (SELECT string_agg(account_id, ',') FROM allow.trusted_accounts))
