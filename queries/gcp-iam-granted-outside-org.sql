-- id: gcp-iam-granted-outside-org
-- title: Role granted to an account outside the organisation
-- severity: high
-- category: privilege-escalation
-- srm-layer: identity
-- service-models: iaas, paas, saas
-- attack: T1098.003
-- dedup: account_id, resource
-- summary: {actor_principal} granted a role on {resource} to an account outside the organisation
-- evasions: whole-policy, outcome
-- controls: gcp-outside-org-grants
--
-- A user, group or domain whose domain is neither the granting principal's nor one of
-- the organisation's domains listed in the allow table `trusted_domains`
-- (allow/trusted_domains.csv, one row per domain with its owner, reason and expiry).
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'gcp'
  AND service = 'cloudresourcemanager.googleapis.com'
  AND regexp_like(operation, '(^|\.)SetIamPolicy$')
  AND outcome = 'success'
  AND gcp_adds_outsider(gcp_iam_changes(additional, request, response), actor_principal,
                        (SELECT string_agg(domain, ',') FROM allow.trusted_domains))
