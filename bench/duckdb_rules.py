#!/usr/bin/env python3
"""demarc's AWS detection rules as DuckDB SQL: what a user would otherwise run.

Reads CloudTrail S3 delivery files (`{"Records":[...]}`, gzip) with DuckDB's JSON
reader, unnests into a table once the successful calls of the operations the rules look
at (and the root user's), then runs one query per rule over it, each a
translation of `queries/<rule-id>.sql` with DuckDB's JSON functions (structural where
the rule is: arrays and single objects read alike, as CloudTrail writes both). Writes
the matched `rule_id<TAB>event_id` pairs and prints timings to stderr.

    duckdb_rules.py DIR --out matches.tsv [--threads N]
    duckdb_rules.py --list-rules
"""

import argparse
import sys
import time

# Helpers shared by the rules. CloudTrail writes XML-derived fields as one object or an
# array of objects; jlist() reads both as a list of JSON values, slist() as strings.
MACROS = [
    """CREATE OR REPLACE MACRO jlist(j, p) AS
         CASE json_type(j, p)
           WHEN 'ARRAY' THEN json_extract(j, p || '[*]')
           WHEN 'NULL' THEN []::JSON[]
           WHEN 'OBJECT' THEN [json_extract(j, p)]
           WHEN 'VARCHAR' THEN [json_extract(j, p)]
           WHEN 'BOOLEAN' THEN [json_extract(j, p)]
           WHEN 'BIGINT' THEN [json_extract(j, p)]
           WHEN 'UBIGINT' THEN [json_extract(j, p)]
           WHEN 'DOUBLE' THEN [json_extract(j, p)]
           ELSE []::JSON[]
         END""",
    """CREATE OR REPLACE MACRO slist(j, p) AS
         list_transform(jlist(j, p), lambda x: json_extract_string(x, '$'))""",
    # A policy document, parsed when CloudTrail kept it as a JSON string.
    """CREATE OR REPLACE MACRO policy_doc(j) AS
         CASE WHEN json_type(j) = 'VARCHAR' THEN TRY_CAST(json_extract_string(j, '$') AS JSON)
              ELSE j END""",
    # An Allow statement for anyone that no org, account, network or principal
    # condition confines (demarc's aws_policy_public).
    """CREATE OR REPLACE MACRO policy_public(j) AS
         coalesce(list_bool_or(list_transform(jlist(policy_doc(j), '$.Statement'), lambda s:
           lower(json_extract_string(s, '$.Effect')) = 'allow'
           AND (json_extract_string(s, '$.Principal') = '*'
                OR list_contains(slist(s, '$.Principal.AWS'), '*'))
           AND NOT coalesce(regexp_matches(lower(json_extract(s, '$.Condition')::VARCHAR),
                 '"aws:(principalorgid|principalorgpaths|principalaccount|principalarn|sourceaccount|sourceowner|sourcearn|sourceorgid|sourceorgpaths|sourcevpce?|userid)"'),
               false))), false)""",
    # An ingress permission opening an admin port, or every protocol, to the world
    # (demarc's aws_ingress_admin_open).
    """CREATE OR REPLACE MACRO ingress_admin_open(j) AS
         coalesce(list_bool_or(list_transform(jlist(j, '$.ipPermissions.items'), lambda p:
           (list_has_any(list_transform(jlist(p, '$.ipRanges.items'), lambda r: json_extract_string(r, '$.cidrIp')),
                         ['0.0.0.0/0'])
            OR list_has_any(list_transform(jlist(p, '$.ipv6Ranges.items'), lambda r: json_extract_string(r, '$.cidrIpv6')),
                            ['::/0', '::0/0']))
           AND (lower(json_extract_string(p, '$.ipProtocol')) IN ('-1', 'all')
                OR (lower(json_extract_string(p, '$.ipProtocol')) IN ('tcp', 'udp', 'sctp', '6', '17', '132')
                    AND (TRY_CAST(json_extract_string(p, '$.fromPort') AS BIGINT) IS NULL
                         OR TRY_CAST(json_extract_string(p, '$.fromPort') AS BIGINT) = -1
                         OR TRY_CAST(json_extract_string(p, '$.toPort') AS BIGINT) = -1
                         OR list_bool_or(list_transform(
                              [21, 22, 23, 445, 3306, 3389, 5432, 5985, 5986, 6379, 9200, 27017],
                              lambda port: port BETWEEN TRY_CAST(json_extract_string(p, '$.fromPort') AS BIGINT)
                                               AND coalesce(TRY_CAST(json_extract_string(p, '$.toPort') AS BIGINT),
                                                            TRY_CAST(json_extract_string(p, '$.fromPort') AS BIGINT))))))))),
           false)""",
]

# One query per rule, over `events` (see LOAD); every rule needs a successful call.
RULES = {
    "aws-cloudtrail-logging-stopped": """
        service = 'cloudtrail.amazonaws.com' AND operation IN ('StopLogging', 'DeleteTrail')""",
    "aws-cloudtrail-selectors-exclude-management": """
        service = 'cloudtrail.amazonaws.com' AND operation = 'PutEventSelectors'
        AND ((list_contains(list_transform(jlist(request, '$.eventSelectors'),
                                           lambda s: json_extract_string(s, '$.includeManagementEvents')), 'false')
              AND NOT list_contains(list_transform(jlist(request, '$.eventSelectors'),
                                                   lambda s: json_extract_string(s, '$.includeManagementEvents')), 'true'))
          OR (json_extract(request, '$.advancedEventSelectors') IS NOT NULL
              AND NOT list_contains(flatten(list_transform(jlist(request, '$.advancedEventSelectors'),
                    lambda a: flatten(list_transform(jlist(a, '$.fieldSelectors'), lambda f: slist(f, '$.equals'))))),
                  'Management')))""",
    "aws-console-login-without-mfa": """
        service = 'signin.amazonaws.com' AND operation = 'ConsoleLogin'
        AND lower(coalesce(json_extract_string(response, '$.ConsoleLogin'), '')) <> 'failure'
        AND json_extract_string(identity, '$.type') = 'IAMUser'
        AND coalesce(CASE lower(json_extract_string(additional, '$.MFAUsed'))
                       WHEN 'yes' THEN true WHEN 'no' THEN false END,
                     TRY_CAST(json_extract_string(identity, '$.sessionContext.attributes.mfaAuthenticated') AS BOOLEAN))
            = false""",
    "aws-ec2-snapshot-or-image-public": """
        service = 'ec2.amazonaws.com' AND operation IN ('ModifySnapshotAttribute', 'ModifyImageAttribute')
        AND (list_contains(list_transform(jlist(request, '$.createVolumePermission.add.items'),
                                          lambda i: json_extract_string(i, '$.group')), 'all')
          OR list_contains(list_transform(jlist(request, '$.launchPermission.add.items'),
                                          lambda i: json_extract_string(i, '$.group')), 'all'))""",
    "aws-encryption-key-disabled": """
        (service = 'kms.amazonaws.com' AND operation IN ('DisableKey', 'ScheduleKeyDeletion'))
        OR (service = 'ec2.amazonaws.com' AND operation = 'DisableEbsEncryptionByDefault')
        OR (service = 's3.amazonaws.com' AND operation = 'DeleteBucketEncryption')""",
    "aws-imdsv1-enabled": """
        service = 'ec2.amazonaws.com'
        AND operation IN ('ModifyInstanceMetadataOptions', 'ModifyInstanceMetadataDefaults')
        AND lower(coalesce(
              json_extract_string(request, '$.ModifyInstanceMetadataOptionsRequest.HttpTokens'),
              json_extract_string(request, '$.ModifyInstanceMetadataDefaultsRequest.HttpTokens'),
              json_extract_string(request, '$.httpTokens'))) = 'optional'""",
    "aws-lambda-function-url-public": """
        service = 'lambda.amazonaws.com'
        AND regexp_full_match(operation, '(Create|Update)FunctionUrlConfig([0-9]{8}.*)?')
        AND json_extract_string(request, '$.authType') = 'NONE'""",
    "aws-logging-sources-disabled": """
        (service = 'config.amazonaws.com'
         AND operation IN ('StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel'))
        OR (service = 'ec2.amazonaws.com' AND operation = 'DeleteFlowLogs')
        OR (service = 'guardduty.amazonaws.com' AND operation = 'DeleteDetector')
        OR (service = 'guardduty.amazonaws.com' AND operation = 'UpdateDetector'
            AND json_extract_string(request, '$.enable') = 'false')""",
    "aws-mfa-device-removed": """
        service = 'iam.amazonaws.com' AND operation IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')""",
    "aws-nacl-allows-all-inbound": """
        service = 'ec2.amazonaws.com' AND operation IN ('CreateNetworkAclEntry', 'ReplaceNetworkAclEntry')
        AND json_extract_string(request, '$.egress') = 'false'
        AND lower(json_extract_string(request, '$.ruleAction')) = 'allow'
        AND coalesce(json_extract_string(request, '$.aclProtocol'), json_extract_string(request, '$.protocol'))
            IN ('-1', 'all')
        AND (json_extract_string(request, '$.cidrBlock') = '0.0.0.0/0'
             OR json_extract_string(request, '$.ipv6CidrBlock') = '::/0')""",
    "aws-password-policy-deleted": """
        service = 'iam.amazonaws.com' AND operation = 'DeleteAccountPasswordPolicy'""",
    "aws-rds-publicly-accessible": """
        service = 'rds.amazonaws.com'
        AND operation IN ('ModifyDBInstance', 'CreateDBInstance', 'ModifyDBCluster', 'CreateDBCluster',
                          'RestoreDBInstanceFromDBSnapshot', 'RestoreDBInstanceToPointInTime')
        AND list_contains(slist(request, '$.publiclyAccessible'), 'true')""",
    "aws-rds-snapshot-public": """
        service = 'rds.amazonaws.com'
        AND operation IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
        AND json_extract_string(request, '$.attributeName') = 'restore'
        AND list_contains(slist(request, '$.valuesToAdd'), 'all')""",
    "aws-root-access-key-created": """
        service = 'iam.amazonaws.com' AND operation = 'CreateAccessKey'
        AND json_extract_string(identity, '$.type') = 'Root'
        AND json_extract_string(request, '$.userName') IS NULL""",
    "aws-root-activity": """
        json_extract_string(identity, '$.type') = 'Root'
        AND json_extract_string(identity, '$.invokedBy') IS NULL
        AND (operation = 'ConsoleLogin' OR read_only IS DISTINCT FROM true)""",
    "aws-s3-access-logging-removed": """
        service = 's3.amazonaws.com' AND operation = 'PutBucketLogging'
        AND json_extract(request, '$.BucketLoggingStatus.LoggingEnabled') IS NULL""",
    "aws-s3-bucket-acl-public": """
        service = 's3.amazonaws.com' AND operation = 'PutBucketAcl'
        AND (list_has_any(slist(request, '$."x-amz-acl"'),
                          ['public-read', 'public-read-write', 'authenticated-read'])
          OR list_has_any(list_transform(jlist(request, '$.AccessControlPolicy.AccessControlList.Grant'),
                                         lambda g: json_extract_string(g, '$.Grantee.URI')),
                          ['http://acs.amazonaws.com/groups/global/AllUsers',
                           'http://acs.amazonaws.com/groups/global/AuthenticatedUsers']))""",
    "aws-s3-bucket-policy-public": """
        service = 's3.amazonaws.com' AND operation = 'PutBucketPolicy'
        AND policy_public(coalesce(json_extract(request, '$.bucketPolicy'), json_extract(request, '$.policy')))""",
    "aws-s3-public-access-block-removed": """
        service = 's3.amazonaws.com'
        AND operation IN ('DeleteBucketPublicAccessBlock', 'PutBucketPublicAccessBlock',
                          'DeleteAccountPublicAccessBlock', 'PutAccountPublicAccessBlock')
        AND (operation LIKE 'Delete%'
             OR json_extract_string(request, '$.PublicAccessBlockConfiguration.BlockPublicAcls') = 'false'
             OR json_extract_string(request, '$.PublicAccessBlockConfiguration.IgnorePublicAcls') = 'false'
             OR json_extract_string(request, '$.PublicAccessBlockConfiguration.BlockPublicPolicy') = 'false'
             OR json_extract_string(request, '$.PublicAccessBlockConfiguration.RestrictPublicBuckets') = 'false')""",
    "aws-security-group-admin-port-open": """
        service = 'ec2.amazonaws.com' AND operation = 'AuthorizeSecurityGroupIngress'
        AND ingress_admin_open(request)""",
    "aws-admin-policy-attached": """
        service = 'iam.amazonaws.com'
        AND operation IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy')
        AND json_extract_string(request, '$.policyArn') = 'arn:aws:iam::aws:policy/AdministratorAccess'""",
}

# Only the fields the rules read are typed; the nested documents stay JSON so that the
# reader never has to infer (or fail to infer) a schema for requestParameters. A file is
# one JSON object: maximum_object_size must hold the largest file, uncompressed (128 MiB;
# format='auto' with 1 GiB ran out of memory here). format='unstructured' reads files on
# every thread, 'newline_delimited' would not.
RECORD = (
    "STRUCT(eventID VARCHAR, eventSource VARCHAR, eventName VARCHAR, errorCode VARCHAR, "
    "readOnly BOOLEAN, userIdentity JSON, requestParameters JSON, responseElements JSON, "
    "additionalEventData JSON)[]"
)

# Every operation a rule looks at: the load keeps only these events (and the root user's),
# as anyone running many rules over a large archive would.
OPERATIONS = sorted(
    """AttachGroupPolicy AttachRolePolicy AttachUserPolicy AuthorizeSecurityGroupIngress
    ConsoleLogin CreateAccessKey CreateDBCluster CreateDBInstance CreateNetworkAclEntry
    DeactivateMFADevice DeleteAccountPasswordPolicy DeleteAccountPublicAccessBlock
    DeleteBucketEncryption DeleteBucketPublicAccessBlock DeleteConfigurationRecorder
    DeleteDeliveryChannel DeleteDetector DeleteFlowLogs DeleteTrail DeleteVirtualMFADevice
    DisableEbsEncryptionByDefault DisableKey ModifyDBCluster ModifyDBClusterSnapshotAttribute
    ModifyDBInstance ModifyDBSnapshotAttribute ModifyImageAttribute
    ModifyInstanceMetadataDefaults ModifyInstanceMetadataOptions ModifySnapshotAttribute
    PutAccountPublicAccessBlock PutBucketAcl PutBucketLogging PutBucketPolicy
    PutBucketPublicAccessBlock PutEventSelectors ReplaceNetworkAclEntry
    RestoreDBInstanceFromDBSnapshot RestoreDBInstanceToPointInTime ScheduleKeyDeletion
    StopConfigurationRecorder StopLogging UpdateDetector""".split()
)

LOAD = f"""
CREATE TABLE events AS
SELECT r.eventID AS event_id, r.eventSource AS service, r.eventName AS operation,
       r.readOnly AS read_only, r.userIdentity AS identity, r.requestParameters AS request,
       r.responseElements AS response, r.additionalEventData AS additional
FROM (
  SELECT unnest(Records) AS r
  FROM read_json(?, format = 'unstructured', records = true, compression = 'gzip',
                 columns = {{'Records': '{RECORD}'}}, maximum_object_size = 134217728)
)
WHERE r.errorCode IS NULL
  AND (r.eventName IN ({", ".join(f"'{op}'" for op in OPERATIONS)})
       OR r.eventName LIKE '%FunctionUrlConfig%'
       OR json_extract_string(r.userIdentity, '$.type') = 'Root')
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", nargs="?", help="folder of CloudTrail .json.gz files")
    parser.add_argument("--out", help="write rule_id<TAB>event_id pairs here")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--list-rules", action="store_true", help="print the rule ids")
    args = parser.parse_args()
    if args.list_rules:
        print("\n".join(sorted(RULES)))
        return 0
    if not args.archive or not args.out:
        parser.error("ARCHIVE and --out are needed")

    import duckdb

    started = time.perf_counter()
    db = duckdb.connect()
    if args.threads:
        db.execute(f"SET threads = {args.threads}")
    for macro in MACROS:
        db.execute(macro)
    db.execute(LOAD, [f"{args.archive.rstrip('/')}/**/*.json.gz"])
    loaded = time.perf_counter()
    union = "\nUNION ALL\n".join(
        f"SELECT '{rule_id}' AS rule_id, event_id FROM events WHERE {where}"
        for rule_id, where in RULES.items()
    )
    matches = db.execute(union).fetchall()
    done = time.perf_counter()
    with open(args.out, "w") as out:
        out.write("rule_id\tevent_id\n")
        for rule_id, event_id in matches:
            out.write(f"{rule_id}\t{event_id}\n")
    threads = db.execute("SELECT current_setting('threads')").fetchone()[0]
    print(
        f"duckdb {duckdb.__version__}, {threads} threads: "
        f"load {loaded - started:.2f}s, {len(RULES)} rules {done - loaded:.2f}s, "
        f"{len(matches)} matches",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
