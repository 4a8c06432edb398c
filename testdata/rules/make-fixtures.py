# Writes the rule fixtures under testdata/rules/ (run from testdata/). Review the diff.
import json, os
def ct(eid, source, name, error=None, ro=False, req=None, itype="IAMUser"):
    e = {"eventVersion": "1.08",
         "userIdentity": {"type": itype, "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "userName": "alice"},
         "eventTime": "2026-03-02T10:00:00Z", "eventSource": source, "eventName": name, "awsRegion": "eu-west-1",
         "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "requestParameters": req,
         "responseElements": None, "eventID": eid, "readOnly": ro, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
    if error:
        e["errorCode"] = error; e["errorMessage"] = "not authorized"
    return e
def gcp(iid, method, code=0, service="iam.googleapis.com"):
    return {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {"code": code} if code else {},
            "authenticationInfo": {"principalEmail": "alice@example.com"}, "requestMetadata": {"callerIp": "203.0.113.5"},
            "serviceName": service, "methodName": method, "resourceName": "projects/-/serviceAccounts/sa@acme.iam.gserviceaccount.com",
            "request": {"@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest", "name": "projects/-/serviceAccounts/sa@acme.iam.gserviceaccount.com"}},
            "insertId": iid, "timestamp": "2026-03-02T10:00:00Z", "logName": "projects/acme/logs/cloudaudit.googleapis.com%2Factivity",
            "resource": {"type": "service_account", "labels": {"project_id": "acme"}}}
def write(rule, kind, name, obj):
    d = f"rules/{rule}/{kind}"; os.makedirs(d, exist_ok=True)
    with open(f"{d}/{name}.json", "w") as f: f.write(json.dumps(obj, indent=2) + "\n")

r = "aws-cloudtrail-logging-stopped"
trail = {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail"}
write(r, "positive", "stop-logging", ct("pos-stop", "cloudtrail.amazonaws.com", "StopLogging", req=trail))
write(r, "positive", "delete-trail-records", {"Records": [ct("pos-delete", "cloudtrail.amazonaws.com", "DeleteTrail", req=trail)]})
write(r, "negative", "stop-logging-denied", ct("neg-denied", "cloudtrail.amazonaws.com", "StopLogging", error="AccessDenied", req=trail))
write(r, "negative", "start-logging-and-status", [ct("neg-start", "cloudtrail.amazonaws.com", "StartLogging", req=trail),
                                                  ct("neg-status", "cloudtrail.amazonaws.com", "GetTrailStatus", ro=True, req=trail)])

r = "aws-encryption-key-disabled"
key = {"keyId": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
write(r, "positive", "disable-key", ct("pos-disable", "kms.amazonaws.com", "DisableKey", req=key))
write(r, "positive", "schedule-deletion-and-ebs-default", [
    ct("pos-schedule", "kms.amazonaws.com", "ScheduleKeyDeletion", req={**key, "pendingWindowInDays": 7}),
    ct("pos-ebs", "ec2.amazonaws.com", "DisableEbsEncryptionByDefault", req={"DisableEbsEncryptionByDefaultRequest": ""})])
write(r, "negative", "enable-key-and-failed-disable", [ct("neg-enable", "kms.amazonaws.com", "EnableKey", req=key),
    ct("neg-failed", "kms.amazonaws.com", "DisableKey", error="AccessDeniedException", req=key)])
write(r, "negative", "describe-key", ct("neg-describe", "kms.amazonaws.com", "DescribeKey", ro=True, req=key))

r = "gcp-service-account-key-created"
write(r, "positive", "create-key", gcp("pos-create", "google.iam.admin.v1.CreateServiceAccountKey"))
write(r, "positive", "create-key-v1-prefix-ndjson", gcp("pos-create-v1", "v1.CreateServiceAccountKey"))
write(r, "negative", "create-key-denied", gcp("neg-denied", "google.iam.admin.v1.CreateServiceAccountKey", code=7))
write(r, "negative", "list-and-lookalike", [gcp("neg-list", "google.iam.admin.v1.ListServiceAccountKeys"),
    gcp("neg-lookalike", "google.iam.admin.v1.CreateServiceAccountKeyPolicy")])

def login(eid, mfa_used, itype="IAMUser", ok=True):
    e = ct(eid, "signin.amazonaws.com", "ConsoleLogin", itype=itype)
    e["eventType"] = "AwsConsoleSignIn"
    e["responseElements"] = {"ConsoleLogin": "Success" if ok else "Failure"}
    e["additionalEventData"] = {"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": mfa_used}
    if not ok:
        e["errorMessage"] = "Failed authentication"
    if itype == "AssumedRole":
        e["userIdentity"]["arn"] = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b/alice"
    return e

r = "aws-mfa-device-removed"
mfa = {"userName": "alice", "serialNumber": "arn:aws:iam::111122223333:mfa/alice"}
write(r, "positive", "deactivate", ct("pos-deactivate", "iam.amazonaws.com", "DeactivateMFADevice", req=mfa))
write(r, "positive", "delete-virtual", ct("pos-delete-virtual", "iam.amazonaws.com", "DeleteVirtualMFADevice", req={"serialNumber": mfa["serialNumber"]}))
write(r, "negative", "enable-and-list", [ct("neg-enable", "iam.amazonaws.com", "EnableMFADevice", req=mfa),
    ct("neg-list", "iam.amazonaws.com", "ListMFADevices", ro=True, req={"userName": "alice"})])
write(r, "negative", "deactivate-denied", ct("neg-denied", "iam.amazonaws.com", "DeactivateMFADevice", error="AccessDenied", req=mfa))

r = "aws-console-login-without-mfa"
write(r, "positive", "iam-user-no-mfa", login("pos-no-mfa", "No"))
write(r, "positive", "eventbridge-no-mfa", {"version": "0", "id": "eb-1", "detail-type": "AWS Console Sign In via CloudTrail",
    "source": "aws.signin", "account": "111122223333", "time": "2026-03-02T10:00:00Z", "region": "us-east-1", "resources": [],
    "detail": login("pos-eb-no-mfa", "No")})
write(r, "negative", "with-mfa-and-failed", [login("neg-mfa", "Yes"), login("neg-failed", "No", ok=False)])
write(r, "negative", "sso-session", login("neg-sso", "No", itype="AssumedRole"))

r = "aws-logging-sources-disabled"
write(r, "positive", "config-recorder", ct("pos-config", "config.amazonaws.com", "StopConfigurationRecorder", req={"configurationRecorderName": "default"}))
write(r, "positive", "flow-logs-and-guardduty", [ct("pos-flow", "ec2.amazonaws.com", "DeleteFlowLogs", req={"DeleteFlowLogsRequest": {"FlowLogId": {"tag": 1, "content": "fl-0abc"}}}),
    ct("pos-guardduty", "guardduty.amazonaws.com", "DeleteDetector", req={"detectorId": "12abc34d567e8fa901bc2d34e56789f0"})])
write(r, "negative", "start-recorder-and-create-flow-logs", [ct("neg-start", "config.amazonaws.com", "StartConfigurationRecorder", req={"configurationRecorderName": "default"}),
    ct("neg-create-flow", "ec2.amazonaws.com", "CreateFlowLogs", req={"CreateFlowLogsRequest": {}})])
write(r, "negative", "delete-detector-denied", ct("neg-denied", "guardduty.amazonaws.com", "DeleteDetector", error="AccessDeniedException", req={"detectorId": "x"}))

def gcp_logging(iid, method, code=0, resource="projects/acme/sinks/audit-export"):
    e = gcp(iid, method, code=code, service="logging.googleapis.com")
    e["protoPayload"]["resourceName"] = resource
    e["protoPayload"]["request"] = {"@type": "type.googleapis.com/google.logging.v2.DeleteSinkRequest", "sinkName": resource}
    return e

r = "gcp-log-sink-deleted"
write(r, "positive", "delete-sink", gcp_logging("pos-sink", "google.logging.v2.ConfigServiceV2.DeleteSink"))
write(r, "positive", "delete-bucket", gcp_logging("pos-bucket", "google.logging.v2.ConfigServiceV2.DeleteBucket", resource="projects/acme/locations/global/buckets/audit"))
write(r, "negative", "update-and-list", [gcp_logging("neg-update", "google.logging.v2.ConfigServiceV2.UpdateSink"),
    gcp_logging("neg-list", "google.logging.v2.ConfigServiceV2.ListSinks")])
write(r, "negative", "delete-denied", gcp_logging("neg-denied", "google.logging.v2.ConfigServiceV2.DeleteSink", code=7))

def root(e):
    e["userIdentity"] = {"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}
    return e

r = "aws-root-activity"
write(r, "positive", "root-console-login", root(login("pos-root-login", "Yes")))
write(r, "positive", "root-change", root(ct("pos-root-change", "s3.amazonaws.com", "PutBucketPolicy", req={"bucketName": "b"})))
write(r, "negative", "root-read-and-service-call", [root(ct("neg-root-read", "iam.amazonaws.com", "GetAccountSummary", ro=True)),
    {**root(ct("neg-invoked", "kms.amazonaws.com", "Decrypt")), "userIdentity": {"type": "Root", "accountId": "111122223333", "invokedBy": "cloudtrail.amazonaws.com"}}])
write(r, "negative", "user-change-and-root-denied", [ct("neg-user", "s3.amazonaws.com", "PutBucketPolicy", req={"bucketName": "b"}),
    root(ct("neg-root-denied", "iam.amazonaws.com", "CreateUser", error="AccessDenied", req={"userName": "x"}))])

r = "aws-password-policy-deleted"
write(r, "positive", "delete-policy", ct("pos-delete", "iam.amazonaws.com", "DeleteAccountPasswordPolicy"))
write(r, "positive", "delete-policy-by-role", {**ct("pos-delete-role", "iam.amazonaws.com", "DeleteAccountPasswordPolicy"),
    "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/admin/x", "accountId": "111122223333"}})
write(r, "negative", "update-policy", ct("neg-update", "iam.amazonaws.com", "UpdateAccountPasswordPolicy", req={"minimumPasswordLength": 14}))
write(r, "negative", "delete-denied", ct("neg-denied", "iam.amazonaws.com", "DeleteAccountPasswordPolicy", error="AccessDenied"))

r = "aws-root-access-key-created"
write(r, "positive", "root-key", root(ct("pos-root-key", "iam.amazonaws.com", "CreateAccessKey", req=None)))
write(r, "positive", "root-key-empty-request", root(ct("pos-root-key-2", "iam.amazonaws.com", "CreateAccessKey", req={})))
write(r, "negative", "root-creates-key-for-user", root(ct("neg-for-user", "iam.amazonaws.com", "CreateAccessKey", req={"userName": "deploy-bot"})))
write(r, "negative", "user-creates-own-key", ct("neg-user-key", "iam.amazonaws.com", "CreateAccessKey", req={"userName": "alice"}))

r = "aws-admin-policy-attached"
admin = "arn:aws:iam::aws:policy/AdministratorAccess"
write(r, "positive", "attach-user", ct("pos-user", "iam.amazonaws.com", "AttachUserPolicy", req={"userName": "mallory", "policyArn": admin}))
write(r, "positive", "attach-role-and-group", [ct("pos-role", "iam.amazonaws.com", "AttachRolePolicy", req={"roleName": "ci", "policyArn": admin}),
    ct("pos-group", "iam.amazonaws.com", "AttachGroupPolicy", req={"groupName": "devs", "policyArn": admin})])
write(r, "negative", "read-only-policy", ct("neg-readonly", "iam.amazonaws.com", "AttachUserPolicy", req={"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}))
write(r, "negative", "detach-and-denied", [ct("neg-detach", "iam.amazonaws.com", "DetachUserPolicy", req={"userName": "bob", "policyArn": admin}),
    ct("neg-denied", "iam.amazonaws.com", "AttachUserPolicy", error="AccessDenied", req={"userName": "bob", "policyArn": admin})])

# ---------------------------------------------------------------------------------------------
# Exposure and control-weakening rules. Shapes follow real CloudTrail requestParameters and real
# GCP protoPayloads (see /work/shared/corpus for the AWS EC2/S3/RDS and GCP compute operation shapes).

def s3(eid, name, bucket="acme-data", error=None, ro=False, **params):
    return ct(eid, "s3.amazonaws.com", name, error=error, ro=ro,
              req={"bucketName": bucket, "Host": f"{bucket}.s3.eu-west-1.amazonaws.com", **params})
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
OWNER_ID = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
def grantee_group(uri): return {"xsi:type": "Group", "xmlns:xsi": XSI, "URI": uri}
def grantee_user(cid=OWNER_ID): return {"xsi:type": "CanonicalUser", "xmlns:xsi": XSI, "ID": cid}
def acp(grant):
    return {"AccessControlList": {"Grant": grant}, "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Owner": {"ID": OWNER_ID}}

r = "aws-s3-bucket-acl-public"
write(r, "positive", "canned-public-read", s3("pos-canned-public-read", "PutBucketAcl", acl=[""], **{"x-amz-acl": ["public-read"]}))
write(r, "positive", "canned-string-and-authenticated-read", [
    s3("pos-canned-public-read-write", "PutBucketAcl", bucket="acme-web", acl="", **{"x-amz-acl": "public-read-write"}),
    s3("pos-canned-authenticated-read", "PutBucketAcl", bucket="acme-share", acl=[""], **{"x-amz-acl": ["authenticated-read"]})])
write(r, "positive", "grant-array-all-users", s3("pos-grant-all-users", "PutBucketAcl", acl=[""], AccessControlPolicy=acp([
    {"Grantee": grantee_user(), "Permission": "FULL_CONTROL"},
    {"Grantee": grantee_group(ALL_USERS), "Permission": "READ"}])))
write(r, "positive", "grant-object-authenticated-users", {"Records": [s3("pos-grant-auth-users", "PutBucketAcl", bucket="acme-reports", acl=[""],
    AccessControlPolicy=acp({"Grantee": grantee_group(AUTH_USERS), "Permission": "READ_ACP"}))]})
write(r, "negative", "canned-private-and-read", [
    s3("neg-canned-private", "PutBucketAcl", acl=[""], **{"x-amz-acl": ["private"]}),
    s3("neg-get-acl", "GetBucketAcl", ro=True, acl=[""])])
write(r, "negative", "grant-object-canonical-user", s3("neg-grant-canonical", "PutBucketAcl", acl=[""],
    AccessControlPolicy=acp({"Grantee": grantee_user(), "Permission": "FULL_CONTROL"})))
write(r, "negative", "grant-log-delivery-group", s3("neg-grant-log-delivery", "PutBucketAcl", bucket="acme-logs", acl=[""], AccessControlPolicy=acp([
    {"Grantee": grantee_user(), "Permission": "FULL_CONTROL"},
    {"Grantee": grantee_group("http://acs.amazonaws.com/groups/s3/LogDelivery"), "Permission": "WRITE"}])))
write(r, "negative", "public-read-denied", s3("neg-public-read-denied", "PutBucketAcl", error="AccessDenied", acl=[""], **{"x-amz-acl": ["public-read"]}))

def stmt(sid, effect, principal, action="s3:GetObject", resource="arn:aws:s3:::acme-data/*", condition=None):
    s = {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if condition: s["Condition"] = condition
    return s
def bucket_policy(eid, statements, bucket="acme-data", error=None, as_string=False):
    doc = {"Version": "2012-10-17", "Statement": statements}
    return s3(eid, "PutBucketPolicy", bucket=bucket, error=error, bucketPolicy=json.dumps(doc) if as_string else doc, policy=[""])

r = "aws-s3-bucket-policy-public"
write(r, "positive", "principal-star-array", bucket_policy("pos-principal-star", [
    stmt("AllowCloudTrailAcl", "Allow", {"Service": "cloudtrail.amazonaws.com"}, "s3:GetBucketAcl", "arn:aws:s3:::acme-data"),
    stmt("PublicRead", "Allow", "*")]))
write(r, "positive", "principal-aws-list-single-statement", bucket_policy("pos-principal-aws-list",
    stmt("PublicList", "Allow", {"AWS": ["*"]}, ["s3:ListBucket", "s3:GetObject"], ["arn:aws:s3:::acme-web", "arn:aws:s3:::acme-web/*"]), bucket="acme-web"))
write(r, "positive", "policy-as-string-and-non-restricting-condition", [
    bucket_policy("pos-policy-string", [stmt("Public", "Allow", {"AWS": "*"}, "s3:*", "arn:aws:s3:::acme-share/*")], bucket="acme-share", as_string=True),
    bucket_policy("pos-tls-only-condition", [stmt("PublicOverTls", "Allow", {"AWS": "*"}, "s3:GetObject", "arn:aws:s3:::acme-pub/*",
        {"Bool": {"aws:SecureTransport": "true"}})], bucket="acme-pub")])
write(r, "negative", "deny-insecure-transport", bucket_policy("neg-deny-insecure", [stmt("DenyInsecureTransport", "Deny", "*", "s3:*",
    ["arn:aws:s3:::acme-data", "arn:aws:s3:::acme-data/*"], {"Bool": {"aws:SecureTransport": "false"}})]))
write(r, "negative", "star-restricted-to-org-and-account-principal", [
    bucket_policy("neg-org-condition", [stmt("OrgRead", "Allow", "*", "s3:GetObject", "arn:aws:s3:::acme-data/*",
        {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})]),
    bucket_policy("neg-account-principal", [stmt("CrossAccount", "Allow", {"AWS": "arn:aws:iam::444455556666:root"}, "s3:GetObject")])])
write(r, "negative", "service-principal-and-denied", [
    bucket_policy("neg-service-source-arn", [stmt("AWSCloudTrailWrite", "Allow", {"Service": "cloudtrail.amazonaws.com"}, "s3:PutObject",
        "arn:aws:s3:::acme-trail/AWSLogs/111122223333/*", {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
        "aws:SourceArn": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail"}})], bucket="acme-trail"),
    bucket_policy("neg-public-denied", [stmt("PublicRead", "Allow", "*")], error="AccessDenied")])

PAB_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
def pab(acls=True, ignore=True, policy=True, restrict=True):
    return {"xmlns": PAB_NS, "BlockPublicAcls": acls, "IgnorePublicAcls": ignore, "BlockPublicPolicy": policy, "RestrictPublicBuckets": restrict}
def account_pab(eid, name, cfg=None, error=None):
    req = {"Host": "111122223333.s3-control.eu-west-1.amazonaws.com"}
    if cfg is not None: req["PublicAccessBlockConfiguration"] = cfg
    e = ct(eid, "s3.amazonaws.com", name, error=error, req=req)
    e["additionalEventData"] = {"SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader"}
    return e

r = "aws-s3-public-access-block-removed"
write(r, "positive", "delete-bucket-block", s3("pos-delete-bucket-pab", "DeleteBucketPublicAccessBlock", publicAccessBlock=[""]))
write(r, "positive", "put-bucket-block-weakened", s3("pos-put-bucket-pab-weak", "PutBucketPublicAccessBlock", publicAccessBlock=[""],
    PublicAccessBlockConfiguration=pab(policy=False, restrict=False)))
write(r, "positive", "account-level", [account_pab("pos-put-account-pab-off", "PutAccountPublicAccessBlock", pab(False, False, False, False)),
    account_pab("pos-delete-account-pab", "DeleteAccountPublicAccessBlock")])
write(r, "negative", "put-all-true", [s3("neg-put-bucket-pab-strict", "PutBucketPublicAccessBlock", publicAccessBlock=[""], PublicAccessBlockConfiguration=pab()),
    account_pab("neg-put-account-pab-strict", "PutAccountPublicAccessBlock", pab())])
write(r, "negative", "delete-denied-and-read", [
    s3("neg-delete-bucket-pab-denied", "DeleteBucketPublicAccessBlock", error="AccessDenied", publicAccessBlock=[""]),
    s3("neg-get-bucket-pab", "GetBucketPublicAccessBlock", ro=True, publicAccessBlock=[""])])

def ec2(eid, name, req, error=None, ro=False):
    return ct(eid, "ec2.amazonaws.com", name, error=error, ro=ro, req=req)

r = "aws-ec2-snapshot-or-image-public"
write(r, "positive", "snapshot-group-all", ec2("pos-snapshot-all", "ModifySnapshotAttribute", {"snapshotId": "snap-00f54cf7277498559",
    "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"group": "all"}]}}}))
write(r, "positive", "image-group-all-single-item", ec2("pos-image-all", "ModifyImageAttribute", {"imageId": "ami-0aa1d83d0b0985c86",
    "launchPermission": {"add": {"items": {"group": "all"}}}, "attributeType": "launchPermission"}))
write(r, "negative", "share-with-account", [
    ec2("neg-snapshot-account", "ModifySnapshotAttribute", {"snapshotId": "snap-00f54cf7277498559", "attributeType": "CREATE_VOLUME_PERMISSION",
        "createVolumePermission": {"add": {"items": [{"userId": "444455556666"}]}}}),
    ec2("neg-image-account", "ModifyImageAttribute", {"imageId": "ami-0aa1d83d0b0985c86",
        "launchPermission": {"add": {"items": [{"userId": "444455556666"}]}}, "attributeType": "launchPermission"})])
write(r, "negative", "remove-group-all", ec2("neg-snapshot-remove-all", "ModifySnapshotAttribute", {"snapshotId": "snap-00f54cf7277498559",
    "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"remove": {"items": [{"group": "all"}]}}}))
write(r, "negative", "denied-and-describe", [
    ec2("neg-image-all-denied", "ModifyImageAttribute", {"imageId": "ami-0aa1d83d0b0985c86",
        "launchPermission": {"add": {"items": [{"group": "all"}]}}, "attributeType": "launchPermission"}, error="Client.UnauthorizedOperation"),
    ec2("neg-describe-snapshot-attr", "DescribeSnapshotAttribute", {"snapshotId": "snap-00f54cf7277498559", "attributeType": "CREATE_VOLUME_PERMISSION"}, ro=True)])

def rds(eid, name, req, error=None, ro=False):
    return ct(eid, "rds.amazonaws.com", name, error=error, ro=ro, req=req)

r = "aws-rds-publicly-accessible"
write(r, "positive", "modify-instance-public", rds("pos-modify-public", "ModifyDBInstance",
    {"dBInstanceIdentifier": "orders-db", "publiclyAccessible": True, "applyImmediately": True, "allowMajorVersionUpgrade": False}))
write(r, "positive", "create-cluster-restore-public", [
    rds("pos-create-public", "CreateDBInstance", {"dBInstanceIdentifier": "reports-db", "allocatedStorage": 20, "dBInstanceClass": "db.t3.micro",
        "engine": "postgres", "masterUsername": "postgres", "masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS", "publiclyAccessible": True,
        "storageEncrypted": True, "multiAZ": False}),
    rds("pos-cluster-public", "ModifyDBCluster", {"dBClusterIdentifier": "analytics-cluster", "publiclyAccessible": True, "applyImmediately": True}),
    rds("pos-restore-public", "RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "orders-db-copy",
        "dBSnapshotIdentifier": "orders-db-2026-03-01", "dBInstanceClass": "db.t3.micro", "publiclyAccessible": True})])
write(r, "negative", "modify-private-and-without-field", [
    rds("neg-modify-private", "ModifyDBInstance", {"dBInstanceIdentifier": "orders-db", "publiclyAccessible": False, "applyImmediately": True}),
    rds("neg-modify-no-field", "ModifyDBInstance", {"dBInstanceIdentifier": "orders-db", "dBInstanceClass": "db.t3.large", "applyImmediately": False})])
write(r, "negative", "public-denied-and-describe", [
    rds("neg-modify-public-denied", "ModifyDBInstance", {"dBInstanceIdentifier": "orders-db", "publiclyAccessible": True}, error="AccessDenied"),
    rds("neg-describe", "DescribeDBInstances", {"dBInstanceIdentifier": "orders-db"}, ro=True)])

r = "aws-rds-snapshot-public"
write(r, "positive", "instance-snapshot-all", rds("pos-snapshot-all", "ModifyDBSnapshotAttribute",
    {"dBSnapshotIdentifier": "orders-db-2026-03-01", "attributeName": "restore", "valuesToAdd": ["all"]}))
write(r, "positive", "cluster-snapshot-all", rds("pos-cluster-snapshot-all", "ModifyDBClusterSnapshotAttribute",
    {"dBClusterSnapshotIdentifier": "analytics-2026-03-01", "attributeName": "restore", "valuesToAdd": ["all"]}))
write(r, "negative", "share-with-account-and-remove-all", [
    rds("neg-snapshot-account", "ModifyDBSnapshotAttribute", {"dBSnapshotIdentifier": "orders-db-2026-03-01", "attributeName": "restore", "valuesToAdd": ["444455556666"]}),
    rds("neg-snapshot-remove-all", "ModifyDBSnapshotAttribute", {"dBSnapshotIdentifier": "orders-db-2026-03-01", "attributeName": "restore", "valuesToRemove": ["all"]})])
write(r, "negative", "public-denied", rds("neg-cluster-snapshot-denied", "ModifyDBClusterSnapshotAttribute",
    {"dBClusterSnapshotIdentifier": "analytics-2026-03-01", "attributeName": "restore", "valuesToAdd": ["all"]}, error="AccessDenied"))

def lam(eid, name, req, error=None, ro=False):
    return ct(eid, "lambda.amazonaws.com", name, error=error, ro=ro, req=req)
FN = "arn:aws:lambda:eu-west-1:111122223333:function:orders-api"

r = "aws-lambda-function-url-public"
write(r, "positive", "create-url-auth-none", lam("pos-create-url-none", "CreateFunctionUrlConfig20211031",
    {"functionName": FN, "authType": "NONE", "cors": {"allowOrigins": ["*"]}, "invokeMode": "BUFFERED"}))
write(r, "positive", "update-and-bare-name", [
    lam("pos-update-url-none", "UpdateFunctionUrlConfig20211031", {"functionName": "orders-api", "authType": "NONE"}),
    lam("pos-create-url-bare-name", "CreateFunctionUrlConfig", {"functionName": "billing-api", "authType": "NONE", "qualifier": "live"})])
write(r, "negative", "iam-auth-and-cors-only", [
    lam("neg-create-url-iam", "CreateFunctionUrlConfig20211031", {"functionName": FN, "authType": "AWS_IAM"}),
    lam("neg-update-cors-only", "UpdateFunctionUrlConfig20211031", {"functionName": FN, "cors": {"allowOrigins": ["https://app.example.com"]}})])
write(r, "negative", "get-and-denied", [
    lam("neg-get-url", "GetFunctionUrlConfig20211031", {"functionName": FN}, ro=True),
    lam("neg-create-url-denied", "CreateFunctionUrlConfig20211031", {"functionName": FN, "authType": "NONE"}, error="AccessDeniedException")])

def selectors(eid, req, error=None, ro=False, name="PutEventSelectors"):
    return ct(eid, "cloudtrail.amazonaws.com", name, error=error, ro=ro, req={"trailName": "org-trail", **req})
S3_DATA = [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::acme-data/"]}]
ADV_DATA_ONLY = {"name": "S3 object events", "fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]},
    {"field": "resources.type", "equals": ["AWS::S3::Object"]}]}

r = "aws-cloudtrail-selectors-exclude-management"
write(r, "positive", "basic-management-off", selectors("pos-basic-mgmt-off",
    {"eventSelectors": [{"readWriteType": "All", "includeManagementEvents": False, "dataResources": S3_DATA, "excludeManagementEventSources": []}]}))
write(r, "positive", "advanced-data-only", selectors("pos-advanced-data-only", {"advancedEventSelectors": [ADV_DATA_ONLY]}))
write(r, "negative", "basic-management-on", selectors("neg-basic-mgmt-on",
    {"eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True, "dataResources": [], "excludeManagementEventSources": []}]}))
write(r, "negative", "advanced-with-management", selectors("neg-advanced-with-mgmt", {"advancedEventSelectors": [
    {"name": "Management events", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}, ADV_DATA_ONLY]}))
write(r, "negative", "denied-and-get", [
    selectors("neg-basic-mgmt-off-denied", {"eventSelectors": [{"readWriteType": "All", "includeManagementEvents": False, "dataResources": S3_DATA}]},
        error="AccessDeniedException"),
    selectors("neg-get-selectors", {}, ro=True, name="GetEventSelectors")])

LOG_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
r = "aws-s3-access-logging-removed"
write(r, "positive", "logging-disabled", s3("pos-logging-off", "PutBucketLogging", logging=[""], BucketLoggingStatus={"xmlns": LOG_NS}))
write(r, "positive", "logging-disabled-records", {"Records": [s3("pos-logging-off-records", "PutBucketLogging", bucket="acme-web",
    logging=[""], BucketLoggingStatus={"xmlns": LOG_NS})]})
write(r, "negative", "logging-enabled", s3("neg-logging-on", "PutBucketLogging", logging=[""],
    BucketLoggingStatus={"xmlns": LOG_NS, "LoggingEnabled": {"TargetBucket": "acme-logs", "TargetPrefix": "acme-data/"}}))
write(r, "negative", "removal-denied-and-get", [
    s3("neg-logging-off-denied", "PutBucketLogging", error="AccessDenied", logging=[""], BucketLoggingStatus={"xmlns": LOG_NS}),
    s3("neg-get-logging", "GetBucketLogging", ro=True, logging=[""])])

r = "aws-logging-sources-disabled"
GD = "12abc34d567e8fa901bc2d34e56789f0"
write(r, "positive", "guardduty-update-disabled", ct("pos-gd-update-disable", "guardduty.amazonaws.com", "UpdateDetector",
    req={"detectorId": GD, "enable": False}))
write(r, "negative", "guardduty-update-enabled-or-frequency", [
    ct("neg-gd-update-enable", "guardduty.amazonaws.com", "UpdateDetector", req={"detectorId": GD, "enable": True}),
    ct("neg-gd-update-frequency", "guardduty.amazonaws.com", "UpdateDetector", req={"detectorId": GD, "findingPublishingFrequency": "FIFTEEN_MINUTES"})])

r = "aws-imdsv1-enabled"
write(r, "positive", "instance-tokens-optional", ec2("pos-instance-optional", "ModifyInstanceMetadataOptions",
    {"ModifyInstanceMetadataOptionsRequest": {"InstanceId": "i-0a1b2c3d4e5f67890", "HttpTokens": "optional", "HttpEndpoint": "enabled"}}))
write(r, "positive", "account-defaults-optional", ec2("pos-defaults-optional", "ModifyInstanceMetadataDefaults",
    {"ModifyInstanceMetadataDefaultsRequest": {"HttpTokens": "optional"}}))
write(r, "negative", "tokens-required-and-hop-limit", [
    ec2("neg-instance-required", "ModifyInstanceMetadataOptions", {"ModifyInstanceMetadataOptionsRequest": {"InstanceId": "i-0a1b2c3d4e5f67890", "HttpTokens": "required"}}),
    ec2("neg-hop-limit-only", "ModifyInstanceMetadataOptions", {"ModifyInstanceMetadataOptionsRequest": {"InstanceId": "i-0a1b2c3d4e5f67890", "HttpPutResponseHopLimit": 2}})])
write(r, "negative", "optional-denied", ec2("neg-instance-optional-denied", "ModifyInstanceMetadataOptions",
    {"ModifyInstanceMetadataOptionsRequest": {"InstanceId": "i-0a1b2c3d4e5f67890", "HttpTokens": "optional"}}, error="Client.UnauthorizedOperation"))

def perm(proto, from_port=None, to_port=None, v4=(), v6=(), groups=None, single=False):
    p = {"ipProtocol": proto}
    if from_port is not None: p["fromPort"] = from_port; p["toPort"] = to_port
    r4 = [{"cidrIp": c} for c in v4]; r6 = [{"cidrIpv6": c} for c in v6]
    p["groups"] = {"items": groups} if groups else {}
    p["ipRanges"] = ({"items": r4[0] if single else r4} if r4 else {})
    p["ipv6Ranges"] = ({"items": r6[0] if single else r6} if r6 else {})
    p["prefixListIds"] = {}
    return p
def sg_ingress(eid, perms, error=None, name="AuthorizeSecurityGroupIngress", single=False):
    return ec2(eid, name, {"groupId": "sg-04cfb7a4712d75b00", "ipPermissions": {"items": perms[0] if single else perms}}, error=error)

r = "aws-security-group-admin-port-open"
write(r, "positive", "ssh-from-anywhere", sg_ingress("pos-ssh-anywhere", [perm("tcp", 22, 22, v4=["0.0.0.0/0"])]))
write(r, "positive", "rdp-from-ipv6-anywhere-single-items", sg_ingress("pos-rdp-ipv6", [perm("tcp", 3389, 3389, v6=["::/0"], single=True)], single=True))
write(r, "positive", "all-protocols-and-all-ports", [
    sg_ingress("pos-all-protocols", [perm("-1", v4=["0.0.0.0/0"])]),
    sg_ingress("pos-all-tcp-ports", [perm("tcp", 443, 443, v4=["0.0.0.0/0"]), perm("tcp", 0, 65535, v4=["0.0.0.0/0"])])])
write(r, "negative", "https-from-anywhere", sg_ingress("neg-https-anywhere", [perm("tcp", 443, 443, v4=["0.0.0.0/0"])]))
write(r, "negative", "ssh-from-private-range-and-group", [
    sg_ingress("neg-ssh-private", [perm("tcp", 22, 22, v4=["10.0.0.0/8"])]),
    sg_ingress("neg-ssh-from-sg", [perm("tcp", 22, 22, groups=[{"groupId": "sg-0bastion0000000001"}])])])
write(r, "negative", "ssh-denied-and-revoke", [
    sg_ingress("neg-ssh-denied", [perm("tcp", 22, 22, v4=["0.0.0.0/0"])], error="Client.UnauthorizedOperation"),
    sg_ingress("neg-ssh-revoke", [perm("tcp", 22, 22, v4=["0.0.0.0/0"])], name="RevokeSecurityGroupIngress")])

# Real CloudTrail names the NACL protocol field `aclProtocol` (not `protocol`), with portRange {from,to}.
def nacl(eid, name="CreateNetworkAclEntry", egress=False, action="allow", proto="-1", cidr="0.0.0.0/0", v6=None, ports=None, error=None):
    req = {"networkAclId": "acl-0f1e2d3c4b5a69788", "ruleNumber": 100, "egress": egress, "ruleAction": action,
           "icmpTypeCode": {}, "portRange": ports or {}, "aclProtocol": proto}
    if v6: req["ipv6CidrBlock"] = v6
    else: req["cidrBlock"] = cidr
    return ec2(eid, name, req, error=error)

r = "aws-nacl-allows-all-inbound"
write(r, "positive", "create-allow-all-ingress", nacl("pos-create-allow-all"))
write(r, "positive", "replace-allow-all-ipv6", nacl("pos-replace-allow-all-v6", name="ReplaceNetworkAclEntry", v6="::/0"))
write(r, "negative", "egress-and-deny", [nacl("neg-egress-allow-all", egress=True), nacl("neg-ingress-deny-all", action="deny")])
write(r, "negative", "https-only-and-denied", [nacl("neg-https-only", proto="6", ports={"from": 443, "to": 443}),
    nacl("neg-allow-all-denied", error="Client.UnauthorizedOperation")])

r = "aws-encryption-key-disabled"
write(r, "positive", "delete-bucket-encryption", s3("pos-s3-delete-encryption", "DeleteBucketEncryption", encryption=[""]))

# ----- GCP ------------------------------------------------------------------------------------
def gcpx(iid, service, method, resource, request=None, code=0, service_data=None, metadata=None, operation=None,
         actor="alice@example.com", rtype="project", labels=None, log="activity", response=None):
    p = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
         "status": {"code": code, "message": "PERMISSION_DENIED" if code == 7 else "FAILED"} if code else {},
         "authenticationInfo": {"principalEmail": actor},
         "requestMetadata": {"callerIp": "203.0.113.5", "callerSuppliedUserAgent": "google-cloud-sdk gcloud/470.0.0"},
         "serviceName": service, "methodName": method, "resourceName": resource}
    if request is not None: p["request"] = request
    if response is not None: p["response"] = response
    if service_data is not None: p["serviceData"] = service_data
    if metadata is not None: p["metadata"] = metadata
    e = {"protoPayload": p, "insertId": iid, "timestamp": "2026-03-02T10:00:00Z", "severity": "ERROR" if code else "NOTICE",
         "logName": f"projects/acme/logs/cloudaudit.googleapis.com%2F{log}",
         "resource": {"type": rtype, "labels": {"project_id": "acme", **(labels or {})}}}
    if operation is not None: e["operation"] = operation
    return e
def op(oid, part, producer="compute.googleapis.com"):
    return {"id": oid, "producer": producer, part: True}
def bd(action, role, member): return {"action": action, "role": role, "member": member}
def acd(action, log_type="DATA_READ", service="allServices", exempted=None):
    d = {"action": action, "service": service, "logType": log_type}
    if exempted: d["exemptedMember"] = exempted
    return d
def iam_audit_data(bindings=(), audits=()):
    pd = {}
    if bindings: pd["bindingDeltas"] = list(bindings)
    if audits: pd["auditConfigDeltas"] = list(audits)
    return {"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": pd}
def set_iam(iid, resource, bindings=(), audits=(), code=0, service="cloudresourcemanager.googleapis.com", method="SetIamPolicy",
            in_metadata=False, rtype="project", labels=None, actor="alice@example.com"):
    policy = {"bindings": [{"role": b["role"], "members": [b["member"]]} for b in bindings if b["action"] == "ADD"], "etag": "BwYQb7qXk3M="}
    if audits:
        policy["auditConfigs"] = [{"service": a["service"], "auditLogConfigs": [{"logType": a["logType"],
            **({"exemptedMembers": [a["exemptedMember"]]} if "exemptedMember" in a else {})}]} for a in audits if a["action"] == "ADD"]
    request = {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": resource[len("projects/"):] if resource.startswith("projects/") and service.startswith("cloudresourcemanager") else resource, "policy": policy}
    if audits: request["updateMask"] = "bindings,etag,auditConfigs"
    data = iam_audit_data(bindings, audits)
    return gcpx(iid, service, method, resource, request=request, code=code, actor=actor, rtype=rtype, labels=labels,
                service_data=None if in_metadata else data, metadata=data if in_metadata else None)
BUCKET = "projects/_/buckets/acme-public-site"
def storage_iam(iid, bindings, code=0, method="storage.setIamPermissions"):
    e = set_iam(iid, BUCKET, bindings, code=code, service="storage.googleapis.com", method=method, rtype="gcs_bucket",
                labels={"bucket_name": "acme-public-site", "location": "us"})
    e["protoPayload"]["resourceLocation"] = {"currentLocations": ["us"]}
    return e

r = "gcp-iam-public-binding"
write(r, "positive", "storage-all-users", storage_iam("pos-storage-all-users", [bd("ADD", "roles/storage.objectViewer", "allUsers")]))
write(r, "positive", "pubsub-and-run-public", [
    set_iam("pos-pubsub-all-auth", "projects/acme/topics/orders", [bd("ADD", "roles/pubsub.publisher", "allAuthenticatedUsers")],
        service="pubsub.googleapis.com", method="google.pubsub.v1.Publisher.SetIamPolicy", rtype="pubsub_topic", labels={"topic_id": "orders"},
        in_metadata=True),
    set_iam("pos-run-all-users", "projects/acme/locations/us-central1/services/api", [bd("ADD", "roles/run.invoker", "allUsers")],
        service="run.googleapis.com", method="google.cloud.run.v1.Services.SetIamPolicy", rtype="cloud_run_revision",
        labels={"service_name": "api", "location": "us-central1"})])
write(r, "negative", "remove-public-and-add-user", [
    storage_iam("neg-storage-remove-all-users", [bd("REMOVE", "roles/storage.objectViewer", "allUsers")]),
    storage_iam("neg-storage-add-user", [bd("ADD", "roles/storage.objectViewer", "user:bob@example.com")])])
write(r, "negative", "public-denied-and-get", [
    storage_iam("neg-storage-all-users-denied", [bd("ADD", "roles/storage.objectViewer", "allUsers")], code=7),
    gcpx("neg-storage-get-iam", "storage.googleapis.com", "storage.getIamPermissions", BUCKET, log="data_access", rtype="gcs_bucket",
        labels={"bucket_name": "acme-public-site", "location": "us"})])

SINK = "projects/acme/sinks/audit"
def update_sink(iid, sink, mask, code=0):
    return gcpx(iid, "logging.googleapis.com", "google.logging.v2.ConfigServiceV2.UpdateSink", SINK, code=code, rtype="logging_sink",
        labels={"name": "audit", "destination": ""},
        request={"@type": "type.googleapis.com/google.logging.v2.UpdateSinkRequest", "sinkName": SINK,
                 "sink": {"name": "audit", "destination": "storage.googleapis.com/acme-audit", **sink}, "updateMask": mask})
AUDIT_FILTER = 'logName:"cloudaudit.googleapis.com"'

r = "gcp-log-sink-narrowed"
write(r, "positive", "sink-disabled", update_sink("pos-sink-disabled", {"filter": AUDIT_FILTER, "disabled": True}, "disabled"))
write(r, "positive", "filter-excludes-audit", [
    update_sink("pos-filter-not-audit", {"filter": 'NOT logName:"cloudaudit.googleapis.com"'}, "filter"),
    update_sink("pos-filter-minus-activity", {"filter": 'severity>=INFO -logName:"projects/acme/logs/cloudaudit.googleapis.com%2Factivity"'}, "filter")])
write(r, "positive", "exclusion-drops-audit", update_sink("pos-exclusion-audit", {"filter": "", "exclusions": [
    {"name": "drop-audit", "description": "noise", "filter": AUDIT_FILTER}]}, "exclusions"))
write(r, "negative", "filter-keeps-audit-and-destination-change", [
    update_sink("neg-filter-keeps-audit", {"filter": AUDIT_FILTER}, "filter"),
    update_sink("neg-destination-only", {"filter": AUDIT_FILTER, "disabled": False}, "destination")])
write(r, "negative", "disable-denied", update_sink("neg-sink-disabled-denied", {"disabled": True}, "disabled", code=7))
write(r, "negative", "harmless-or-disabled-exclusions", [
    update_sink("neg-exclusion-debug-logs", {"filter": "", "exclusions": [
        {"name": "drop-debug", "filter": 'resource.type="k8s_container" AND severity<WARNING'}]}, "exclusions"),
    update_sink("neg-exclusion-audit-disabled", {"filter": "", "exclusions": [
        {"name": "drop-audit", "filter": AUDIT_FILTER, "disabled": True}]}, "exclusions")])

r = "gcp-audit-logging-reduced"
write(r, "positive", "data-access-removed", set_iam("pos-audit-remove-data-read", "projects/acme", audits=[acd("REMOVE", "DATA_READ")]))
write(r, "positive", "exemption-added-and-metadata", [
    set_iam("pos-audit-exempt-member", "projects/acme", audits=[acd("ADD", "DATA_WRITE", exempted="user:mallory@example.com")]),
    set_iam("pos-audit-remove-metadata", "projects/acme", audits=[acd("REMOVE", "DATA_WRITE", service="storage.googleapis.com")], in_metadata=True)])
write(r, "negative", "logging-turned-on-and-binding-only", [
    set_iam("neg-audit-add-data-read", "projects/acme", audits=[acd("ADD", "DATA_READ")]),
    set_iam("neg-binding-only", "projects/acme", [bd("ADD", "roles/viewer", "user:bob@example.com")])])
write(r, "negative", "remove-denied", set_iam("neg-audit-remove-denied", "projects/acme", audits=[acd("REMOVE", "DATA_READ")], code=7))
# Removing an exemption (REMOVE + exemptedMember) widens logging again.
write(r, "negative", "exemption-removed", set_iam("neg-audit-unexempt-member", "projects/acme",
    audits=[acd("REMOVE", "DATA_READ", exempted="user:ci-bot@example.com")]))

SUBNET = "projects/acme/regions/us-central1/subnetworks/default"
SUBNET_LABELS = {"location": "us-central1", "subnetwork_id": "4021356127764562345", "subnetwork_name": "default"}
def subnet_patch(iid, part, oid, body=None, method="v1.compute.subnetworks.patch", code=0):
    req = {"@type": "type.googleapis.com/compute.subnetworks.patch", **body, "fingerprint": "oXiPOBX6W8E="} if body is not None else None
    resp = {"@type": "type.googleapis.com/operation", "name": oid, "operationType": "patch", "status": "DONE" if part == "last" else "RUNNING",
            "targetLink": f"https://www.googleapis.com/compute/v1/{SUBNET}"} if part == "first" else None
    return gcpx(iid, "compute.googleapis.com", method, SUBNET, request=req, response=resp, code=code, operation=op(oid, part),
                rtype="gce_subnetwork", labels=SUBNET_LABELS)

r = "gcp-flow-logs-disabled"
OP_FLOW = "operation-1772445600123-5d18b703b865a-dccbda35-ad8629c7"
write(r, "positive", "log-config-disabled-first-part", subnet_patch("pos-flow-logconfig-off", "first", OP_FLOW, {"logConfig": {"enable": False}}))
write(r, "positive", "enable-flow-logs-false-beta", subnet_patch("pos-flow-enable-false", "first", "operation-1772445700456-5d18b7003d60c-2f9aaeaf-535e4f63",
    {"enableFlowLogs": False}, method="beta.compute.subnetworks.patch"))
write(r, "negative", "last-part-of-disable", subnet_patch("neg-flow-off-last-part", "last", OP_FLOW))
write(r, "negative", "flow-logs-enabled-and-denied", [
    subnet_patch("neg-flow-logconfig-on", "first", "operation-1772445800789-5d18b6dd9a974-6dee9d9a-988a4f6c",
        {"logConfig": {"enable": True, "aggregationInterval": "INTERVAL_5_SEC", "flowSampling": 0.5, "metadata": "INCLUDE_ALL_METADATA"}}),
    subnet_patch("neg-flow-off-denied", "first", "operation-1772445900012-5d18b6d8c7d4a-678a3896-62f6d812",
        {"logConfig": {"enable": False}}, code=7)])

KEY = "projects/acme/locations/global/keyRings/prod/cryptoKeys/db"
KMS_LABELS = {"location": "global", "key_ring_id": "prod", "crypto_key_id": "db", "crypto_key_version_id": "1"}
def kms(iid, method, request, code=0):
    return gcpx(iid, "cloudkms.googleapis.com", f"google.cloud.kms.v1.KeyManagementService.{method}", f"{KEY}/cryptoKeyVersions/1",
                request=request, code=code, rtype="cloudkms_cryptokeyversion", labels=KMS_LABELS)
def kms_destroy(iid, code=0, method="DestroyCryptoKeyVersion"):
    return kms(iid, method, {"@type": f"type.googleapis.com/google.cloud.kms.v1.{method}Request", "name": f"{KEY}/cryptoKeyVersions/1"}, code)
def kms_update(iid, state, code=0):
    return kms(iid, "UpdateCryptoKeyVersion", {"@type": "type.googleapis.com/google.cloud.kms.v1.UpdateCryptoKeyVersionRequest",
               "cryptoKeyVersion": {"name": f"{KEY}/cryptoKeyVersions/1", "state": state}, "updateMask": "state"}, code)

r = "gcp-kms-key-disabled"
write(r, "positive", "destroy-version", kms_destroy("pos-kms-destroy"))
write(r, "positive", "disable-version", kms_update("pos-kms-disable", "DISABLED"))
write(r, "negative", "enable-and-restore", [kms_update("neg-kms-enable", "ENABLED"), kms_destroy("neg-kms-restore", method="RestoreCryptoKeyVersion")])
write(r, "negative", "destroy-denied", kms_destroy("neg-kms-destroy-denied", code=7))

NETWORK = "https://www.googleapis.com/compute/v1/projects/acme/global/networks/default"
def firewall(iid, part, oid, name="allow-ssh", body=None, method="v1.compute.firewalls.insert", code=0):
    verb = method.rsplit(".", 1)[-1]
    req = {"@type": f"type.googleapis.com/compute.firewalls.{verb}", **body} if body is not None else None
    resp = {"@type": "type.googleapis.com/operation", "name": oid, "operationType": verb, "status": "RUNNING",
            "targetLink": f"https://www.googleapis.com/compute/v1/projects/acme/global/firewalls/{name}"} if part == "first" else None
    return gcpx(iid, "compute.googleapis.com", method, f"projects/acme/global/firewalls/{name}", request=req, response=resp, code=code,
                operation=op(oid, part), rtype="gce_firewall_rule", labels={"firewall_rule_id": "8021743218645402831"})
def fw_body(name, allowed, ranges=("0.0.0.0/0",), direction="INGRESS", **extra):
    b = {"name": name, "network": NETWORK, "priority": 1000, "alloweds": allowed}
    if direction: b["direction"] = direction
    if direction == "EGRESS": b["destinationRanges"] = list(ranges)
    else: b["sourceRanges"] = list(ranges)
    return {**b, **extra}

r = "gcp-firewall-admin-port-open"
OP_FW = "operation-1772446000345-5d18b5a706163-f238dbec-106555c8"
write(r, "positive", "insert-ssh-anywhere", firewall("pos-fw-ssh-insert", "first", OP_FW,
    body=fw_body("allow-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}])))
write(r, "positive", "patch-all-protocols-no-direction", firewall("pos-fw-all-patch", "first", "operation-1772446100678-5d18b6db6263d-009ad0ed-4b71b356",
    name="default-allow-internal", method="beta.compute.firewalls.patch",
    body={"alloweds": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"]}))
write(r, "positive", "update-port-range", firewall("pos-fw-range-update", "first", "operation-1772446200901-5d18b700269e6-19f4d541-4d012584",
    name="allow-app", method="v1.compute.firewalls.update",
    body=fw_body("allow-app", [{"IPProtocol": "tcp", "ports": ["80", "3000-3400"]}], direction=None)))
write(r, "negative", "https-only-and-private-ssh", [
    firewall("neg-fw-https", "first", "operation-1772446300234-5d18b703b865a-aaaaaaaa-00000001", name="allow-https",
        body=fw_body("allow-https", [{"IPProtocol": "tcp", "ports": ["443"]}])),
    firewall("neg-fw-ssh-private", "first", "operation-1772446400567-5d18b703b865a-aaaaaaaa-00000002", name="allow-ssh-internal",
        body=fw_body("allow-ssh-internal", [{"IPProtocol": "tcp", "ports": ["22"]}], ranges=["10.128.0.0/9"]))])
write(r, "negative", "last-part-of-ssh-insert", firewall("neg-fw-ssh-last-part", "last", OP_FW))
write(r, "negative", "egress-disabled-and-denied", [
    firewall("neg-fw-egress-ssh", "first", "operation-1772446500890-5d18b703b865a-aaaaaaaa-00000003", name="egress-ssh",
        body=fw_body("egress-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], direction="EGRESS")),
    firewall("neg-fw-ssh-disabled", "first", "operation-1772446600123-5d18b703b865a-aaaaaaaa-00000004", name="allow-ssh-off",
        body=fw_body("allow-ssh-off", [{"IPProtocol": "tcp", "ports": ["22"]}], disabled=True)),
    firewall("neg-fw-ssh-denied", "first", "operation-1772446700456-5d18b703b865a-aaaaaaaa-00000005", name="allow-ssh-x",
        body=fw_body("allow-ssh-x", [{"IPProtocol": "tcp", "ports": ["22"]}]), code=7)])

ORG = "organizations/123456789012"
FOLDER = "folders/456789012345"
r = "gcp-owner-or-editor-granted"
write(r, "positive", "owner-on-project", set_iam("pos-owner-project", "projects/acme", [bd("ADD", "roles/owner", "user:mallory@example.com")]))
write(r, "positive", "editor-metadata-and-org-folder-roles", [
    set_iam("pos-editor-project-metadata", "projects/acme", [bd("ADD", "roles/editor", "serviceAccount:ci@acme.iam.gserviceaccount.com")], in_metadata=True),
    set_iam("pos-org-viewer", ORG, [bd("ADD", "roles/viewer", "user:mallory@example.com")], rtype="organization", labels={"organization_id": "123456789012"}),
    set_iam("pos-folder-browser", FOLDER, [bd("ADD", "roles/browser", "group:contractors@example.com")], rtype="folder", labels={"folder_id": "456789012345"})])
write(r, "negative", "remove-owner-and-project-viewer", [
    set_iam("neg-remove-owner", "projects/acme", [bd("REMOVE", "roles/owner", "user:mallory@example.com")]),
    set_iam("neg-viewer-project", "projects/acme", [bd("ADD", "roles/viewer", "user:bob@example.com")])])
write(r, "negative", "owner-denied", set_iam("neg-owner-denied", "projects/acme", [bd("ADD", "roles/owner", "user:mallory@example.com")], code=7))

r = "gcp-iam-granted-outside-org"
write(r, "positive", "gmail-user", set_iam("pos-outside-gmail", "projects/acme", [bd("ADD", "roles/viewer", "user:mallory@gmail.com")]))
write(r, "positive", "external-group-and-domain", [
    set_iam("pos-outside-group", "projects/acme", [bd("ADD", "roles/storage.admin", "group:ops@partner.io")], in_metadata=True),
    set_iam("pos-outside-domain", "projects/acme", [bd("ADD", "roles/browser", "domain:contractor.dev")])])
write(r, "negative", "same-domain-and-service-account", [
    set_iam("neg-same-domain", "projects/acme", [bd("ADD", "roles/viewer", "user:bob@example.com")]),
    set_iam("neg-service-account", "projects/acme", [bd("ADD", "roles/viewer", "serviceAccount:x@acme.iam.gserviceaccount.com")])])
write(r, "negative", "remove-outsider-and-denied", [
    set_iam("neg-remove-outsider", "projects/acme", [bd("REMOVE", "roles/viewer", "user:mallory@gmail.com")]),
    set_iam("neg-outsider-denied", "projects/acme", [bd("ADD", "roles/viewer", "user:mallory@gmail.com")], code=7)])
# Email domains compare case-insensitively.
write(r, "negative", "same-domain-other-case", set_iam("neg-same-domain-case", "projects/acme", [bd("ADD", "roles/viewer", "user:Carol@Example.COM")]))

SA = "projects/acme/serviceAccounts/deploy@acme.iam.gserviceaccount.com"
def sa_iam(iid, bindings, method="google.iam.admin.v1.SetIAMPolicy", code=0, in_metadata=False):
    return set_iam(iid, SA, bindings, code=code, service="iam.googleapis.com", method=method, rtype="service_account",
                   labels={"email_id": "deploy@acme.iam.gserviceaccount.com", "unique_id": "103271949540120710052"}, in_metadata=in_metadata)

r = "gcp-sa-impersonation-granted"
write(r, "positive", "token-creator", sa_iam("pos-sa-token-creator", [bd("ADD", "roles/iam.serviceAccountTokenCreator", "user:mallory@example.com")]))
write(r, "positive", "sa-user-setiampolicy", sa_iam("pos-sa-user", [bd("ADD", "roles/iam.serviceAccountUser", "group:devs@example.com")],
    method="SetIamPolicy", in_metadata=True))
write(r, "negative", "viewer-and-remove", [
    sa_iam("neg-sa-viewer", [bd("ADD", "roles/iam.serviceAccountViewer", "user:bob@example.com")]),
    sa_iam("neg-sa-remove-token-creator", [bd("REMOVE", "roles/iam.serviceAccountTokenCreator", "user:mallory@example.com")])])
write(r, "negative", "token-creator-denied", sa_iam("neg-sa-token-creator-denied",
    [bd("ADD", "roles/iam.serviceAccountTokenCreator", "user:mallory@example.com")], code=7))
