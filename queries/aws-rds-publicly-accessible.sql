-- id: aws-rds-publicly-accessible
-- title: RDS database made publicly accessible
-- severity: high
-- category: public-exposure
-- srm-layer: data
-- service-models: paas
-- attack: T1190
-- dedup: account_id, resource
-- summary: {actor_principal} made database {resource} publicly accessible with {operation} in account {account_id}
-- evasions: api-defaults, outcome, catalog-variant
-- controls: aws-rds-public-access
SELECT event_id, time, account_id, region, actor_principal, operation, resource
FROM events
WHERE provider = 'aws'
  AND service = 'rds.amazonaws.com'
  AND operation IN ('ModifyDBInstance', 'CreateDBInstance', 'ModifyDBCluster', 'CreateDBCluster',
                    'RestoreDBInstanceFromDBSnapshot', 'RestoreDBInstanceToPointInTime',
                    'RestoreDBInstanceFromS3', 'CreateDBInstanceReadReplica')
  AND outcome = 'success'
  AND (
       array_has(json_values(request, 'publiclyAccessible'), 'true')
    -- A new instance without the field takes RDS's default (public in a default VPC
    -- with an internet gateway): the response says what it became.
    OR (operation NOT LIKE 'Modify%'
        AND json_get_json(request, 'publiclyAccessible') IS NULL
        AND array_has(json_values(response, 'publiclyAccessible'), 'true'))
  )
