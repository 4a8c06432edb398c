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
