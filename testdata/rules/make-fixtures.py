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
