-- id: aws-account-left-organization
-- title: Account left or was removed from the organisation
-- severity: high
-- category: logging-disabled
-- srm-layer: logging
-- service-models: iaas, paas, saas
-- attack: T1562.008, T1666
-- dedup: account_id
-- summary: {actor_principal} ran {operation} in account {account_id}
-- evasions: outcome, catalog-variant
-- controls: aws-organization-membership
--
-- Outside the organisation, its trails, guardrails (SCPs) and delegated security
-- services stop applying to the account.
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'organizations.amazonaws.com'
  AND operation IN ('LeaveOrganization', 'RemoveAccountFromOrganization')
  AND outcome = 'success'
