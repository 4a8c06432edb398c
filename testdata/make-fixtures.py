import json, gzip, base64, io
def w(path, obj):
    with open(path,'w') as f:
        f.write(json.dumps(obj, indent=2)); f.write('\n')

public_acl = {
  "eventVersion": "1.09",
  "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER00001", "arn": "arn:aws:iam::111122223333:user/alice",
     "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEKEY000001", "userName": "alice",
     "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {}, "attributes": {"creationDate": "2026-03-02T09:59:00Z", "mfaAuthenticated": "false"}}},
  "eventTime": "2026-03-02T10:00:01Z", "eventSource": "s3.amazonaws.com", "eventName": "PutBucketAcl", "awsRegion": "eu-west-1",
  "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30",
  "requestParameters": {"bucketName": "customer-exports", "Host": "customer-exports.s3.eu-west-1.amazonaws.com", "acl": "",
     "AccessControlPolicy": {"AccessControlList": {"Grant": {"Grantee": {"xsi:type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}}}},
  "responseElements": None, "additionalEventData": {"SignatureVersion": "SigV4", "bytesTransferredIn": 0},
  "requestID": "R1", "eventID": "11111111-aaaa-4bbb-8ccc-000000000001", "readOnly": False,
  "resources": [{"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::customer-exports"}],
  "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "111122223333", "eventCategory": "Management"}
w('aws/single_event.json', public_acl)

svc = {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
  "eventTime": "2026-03-02T10:00:02Z", "eventSource": "kms.amazonaws.com", "eventName": "GenerateDataKey", "awsRegion": "eu-west-1",
  "sourceIPAddress": "cloudtrail.amazonaws.com", "userAgent": "cloudtrail.amazonaws.com",
  "requestParameters": {"keyId": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "keySpec": "AES_256"},
  "responseElements": None, "requestID": "R2", "eventID": "11111111-aaaa-4bbb-8ccc-000000000002", "readOnly": True,
  "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "111122223333", "sharedEventID": "S1", "eventCategory": "Management"}
denied = {"eventVersion": "1.08", "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEROLE00001:ci", "arn": "arn:aws:sts::111122223333:assumed-role/ci-deployer/ci",
    "accountId": "111122223333", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/ci-deployer", "userName": "ci-deployer"}, "attributes": {"creationDate": "2026-03-02T09:00:00Z", "mfaAuthenticated": "false"}}},
  "eventTime": "2026-03-02T10:00:03Z", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "eu-west-1",
  "sourceIPAddress": "203.0.113.9", "userAgent": "Boto3/1.34.69", "errorCode": "AccessDenied",
  "errorMessage": "User: arn:aws:sts::111122223333:assumed-role/ci-deployer/ci is not authorized to perform: cloudtrail:StopLogging",
  "requestParameters": {"name": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail"}, "responseElements": None,
  "requestID": "R3", "eventID": "11111111-aaaa-4bbb-8ccc-000000000003", "readOnly": False, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
nullreq = {"eventVersion": "1.05", "userIdentity": {"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"},
  "eventTime": "2026-03-02T10:00:04Z", "eventSource": "iam.amazonaws.com", "eventName": "GetAccountSummary", "awsRegion": "us-east-1",
  "sourceIPAddress": "AWS Internal", "userAgent": "AWS Internal", "requestParameters": None, "responseElements": None,
  "requestID": "R4", "eventID": "11111111-aaaa-4bbb-8ccc-000000000004", "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
records = {"Records": [svc, denied, nullreq]}
compact = json.dumps(records, separators=(',',':'))
with open('aws/records_file.json','w') as f: f.write(compact+'\n')
buf = io.BytesIO()
with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as g: g.write(compact.encode())
open('aws/records_gzip.json.gz','wb').write(buf.getvalue())

w('aws/event_array.json', [public_acl, denied])

login = {"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER00002", "arn": "arn:aws:iam::111122223333:user/bob", "accountId": "111122223333", "userName": "bob"},
  "eventTime": "2026-03-02T10:05:00Z", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
  "sourceIPAddress": "198.51.100.23", "userAgent": "Mozilla/5.0", "requestParameters": None, "responseElements": {"ConsoleLogin": "Success"},
  "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "No"},
  "eventID": "11111111-aaaa-4bbb-8ccc-000000000005", "readOnly": False, "eventType": "AwsConsoleSignIn", "managementEvent": True, "recipientAccountId": "111122223333", "eventCategory": "Management"}
eb = {"version": "0", "id": "6f2c3d4e-0000-4000-8000-000000000001", "detail-type": "AWS Console Sign In via CloudTrail", "source": "aws.signin",
  "account": "111122223333", "time": "2026-03-02T10:05:00Z", "region": "us-east-1", "resources": [], "detail": login}
w('aws/eventbridge.json', eb)
w('aws/eventbridge_other.json', {"version": "0", "id": "x", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "account": "111122223333",
   "time": "2026-03-02T10:05:00Z", "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"], "detail": {"instance-id": "i-0abc", "state": "running"}})

ebapi = {**eb, "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": public_acl}
lines = [json.dumps(svc), json.dumps(ebapi), '{"eventID": "broken", "eventTime": ', '', json.dumps(nullreq)]
with open('aws/ndjson.jsonl','w') as f: f.write('\n'.join(lines)+'\n')
# NDJSON whose first line is corrupt: the rest must still be read line by line.
with open('aws/ndjson_bad_first_line.jsonl','w') as f: f.write('\n'.join(['{"Records": [', json.dumps(svc), json.dumps(nullreq)])+'\n')

w('aws/digest.json', {"awsAccountId": "111122223333", "digestStartTime": "2026-03-02T09:00:00Z", "digestEndTime": "2026-03-02T10:00:00Z",
  "digestS3Bucket": "trail-bucket", "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/03/02/x.json.gz",
  "digestPublicKeyFingerprint": "abc", "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": "2026-03-02T09:59:59Z",
  "oldestEventTime": "2026-03-02T09:00:01Z", "previousDigestS3Bucket": "trail-bucket", "previousDigestSignature": "def", "logFiles": []})

w('aws/s3_notification.json', {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1", "eventTime": "2026-03-02T10:00:00.000Z",
   "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"}, "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]})

messy = {"Records": [
  {"eventVersion": "1.02", "userIdentity": None, "eventTime": "2026-03-02T12:00:00+02:00", "eventSource": "iam.amazonaws.com", "eventName": "CreatePolicy",
   "awsRegion": "us-east-1", "sourceIPAddress": "iam.amazonaws.com", "readOnly": "True", "eventID": "22222222-0000-4000-8000-000000000001",
   "requestParameters": json.dumps({"policyName": "p", "policyDocument": "{\"Version\":\"2012-10-17\"}"}), "someNewField": {"nested": [1, 2]}},
  {"eventVersion": "1.08", "userIdentity": {"accountId": "111122223333", "invokedBy": "AWS Internal"}, "eventTime": "2026-03-02T10:00:06.123Z",
   "eventSource": "ec2.amazonaws.com", "eventName": "DescribeRegions", "awsRegion": "eu-west-1", "sourceIPAddress": "AWS Internal",
   "eventID": "22222222-0000-4000-8000-000000000002", "requestParameters": {"regionSet": {}}, "resources": {"ARN": "arn:aws:ec2:eu-west-1::region/eu-west-1"}},
  {"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/eve", "userName": "eve"}, "eventTime": "2026-03-02T10:00:07Z",
   "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.66",
   "eventID": "22222222-0000-4000-8000-000000000003", "errorMessage": "Failed authentication", "responseElements": {"ConsoleLogin": "Failure"},
   "additionalEventData": {"MFAUsed": "Yes"}, "eventType": "AwsConsoleSignIn"},
  {"eventVersion": "1.08", "eventTime": "2026-03-02T10:00:08Z", "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket", "awsRegion": "eu-west-1"},
  {"eventVersion": "1.08", "eventTime": "yesterday", "eventID": "22222222-0000-4000-8000-000000000005", "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket"},
  {"eventVersion": "1.08", "eventID": "22222222-0000-4000-8000-000000000006", "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket"},
  "not an object",
  {"eventVersion": 1.08, "eventTime": "2026-03-02T10:00:09Z", "eventID": 12345, "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
   "awsRegion": ["eu-west-1"], "readOnly": 1, "userIdentity": "arn:aws:iam::111122223333:user/odd", "errorCode": ""}
]}
w('aws/messy.json', messy)

def entry(insert, ts, method, service, resource, principal, status=None, kind="activity", request=None, response=None, extra=None, project="acme-prod", labels=None):
    pp = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": status or {}, "authenticationInfo": {"principalEmail": principal},
          "requestMetadata": {"callerIp": "203.0.113.40", "callerSuppliedUserAgent": "google-cloud-sdk gcloud/467.0.0", "requestAttributes": {}, "destinationAttributes": {}},
          "serviceName": service, "methodName": method, "resourceName": resource}
    if request is not None: pp["request"] = request
    if response is not None: pp["response"] = response
    if extra: pp.update(extra)
    return {"protoPayload": pp, "insertId": insert, "resource": {"type": "gce_instance", "labels": labels or {"project_id": project, "zone": "europe-west1-d"}},
            "timestamp": ts, "severity": "NOTICE", "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{kind}", "receiveTimestamp": ts}

fw = entry("1a2b3c", "2026-03-02T10:00:00.123456789Z", "v1.compute.firewalls.insert", "compute.googleapis.com", "projects/acme-prod/global/firewalls/allow-ssh",
    "alice@example.com", request={"@type": "type.googleapis.com/compute.firewalls.insert", "name": "allow-ssh", "direction": "INGRESS", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]},
    response={"@type": "type.googleapis.com/operation", "status": "RUNNING"}, extra={"authorizationInfo": [{"permission": "compute.firewalls.create", "granted": True, "permissionType": "ADMIN_WRITE"}]},
    labels={"project_id": "acme-prod", "firewall_rule_id": "123"})
fw["operation"] = {"id": "operation-1", "producer": "compute.googleapis.com", "first": True}
w('gcp/log_entry.json', fw)

read = entry("4d5e6f", "2026-03-02T10:00:01Z", "storage.objects.get", "storage.googleapis.com", "projects/_/buckets/acme-data/objects/report.csv",
    "etl@acme-prod.iam.gserviceaccount.com", kind="data_access", extra={"authorizationInfo": [{"permission": "storage.objects.get", "granted": True, "permissionType": "DATA_READ"}],
    "resourceLocation": {"currentLocations": ["eu"]}}, labels={"project_id": "acme-prod", "bucket_name": "acme-data"})
failed = entry("7a8b9c", "2026-03-02T10:00:02Z", "google.iam.admin.v1.CreateServiceAccountKey", "iam.googleapis.com", "projects/-/serviceAccounts/123",
    "mallory@example.net", status={"code": 7, "message": "Permission 'iam.serviceAccountKeys.create' denied"},
    request={"@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest", "name": "projects/-/serviceAccounts/123"})
textp = {"textPayload": "Started Daily apt upgrade and clean activities.", "insertId": "t1", "resource": {"type": "gce_instance", "labels": {"project_id": "acme-prod"}},
         "timestamp": "2026-03-02T10:00:03Z", "logName": "projects/acme-prod/logs/syslog"}
policy = entry("d0e1f2", "2026-03-02T10:00:04Z", "google.cloud.bigquery.v2.TableService.GetTable", "bigquery.googleapis.com", "projects/acme-prod/datasets/d/tables/t",
    "bob@example.com", kind="policy", status={"code": 7, "message": "Request is prohibited by organization's policy"})
jsonp = {"jsonPayload": {"message": "finding"}, "insertId": "j1", "timestamp": "2026-03-02T10:00:05Z", "logName": "projects/acme-prod/logs/securitycenter"}
with open('gcp/export.jsonl','w') as f:
    for e in [read, failed, textp, policy, jsonp]: f.write(json.dumps(e, separators=(',',':'))+'\n')

setiam = entry("aa11bb", "2026-03-02T10:00:06Z", "SetIamPolicy", "cloudresourcemanager.googleapis.com", "projects/acme-prod",
    "admin@example.com", kind="activity", project="acme-prod",
    request={"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": "acme-prod", "policy": {"bindings": [{"role": "roles/owner", "members": ["user:outsider@gmail.com"]}]}},
    response={"@type": "type.googleapis.com/google.iam.v1.Policy", "bindings": [{"role": "roles/owner", "members": ["user:outsider@gmail.com"]}]},
    extra={"serviceData": {"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": {"bindingDeltas": [{"action": "ADD", "role": "roles/owner", "member": "user:outsider@gmail.com"}]}}})
setiam["resource"] = {"type": "project", "labels": {"project_id": "acme-prod"}}
org = entry("cc22dd", "2026-03-02T10:00:07Z", "google.logging.v2.ConfigServiceV2.DeleteSink", "logging.googleapis.com", "organizations/123456789/sinks/audit",
    "admin@example.com", kind="activity", extra={"metadata": {"@type": "type.googleapis.com/google.cloud.audit.Whatever", "note": "x"}})
org["logName"] = "organizations/123456789/logs/cloudaudit.googleapis.com%2Factivity"
org["resource"] = {"type": "logging_sink", "labels": {"name": "audit"}}
appengine = {"protoPayload": {"@type": "type.googleapis.com/google.appengine.logging.v1.RequestLog", "method": "GET"}, "insertId": "ae1", "timestamp": "2026-03-02T10:00:08Z",
             "logName": "projects/acme-prod/logs/appengine.googleapis.com%2Frequest_log"}
w('gcp/entries_list.json', {"entries": [setiam, org, appengine], "nextPageToken": "abc"})
w('gcp/entry_array.json', [read, failed])

msg_data = base64.b64encode(json.dumps(setiam).encode()).decode()
w('gcp/pubsub_push.json', {"message": {"data": msg_data, "attributes": {"logging.googleapis.com/timestamp": "2026-03-02T10:00:06Z"}, "messageId": "9001", "publishTime": "2026-03-02T10:00:07Z"},
   "subscription": "projects/acme-prod/subscriptions/audit-push"})
ndjson_data = base64.urlsafe_b64encode((json.dumps(read)+"\n"+json.dumps(failed)+"\n").encode()).decode().rstrip('=')
w('gcp/pubsub_message.json', {"data": ndjson_data, "attributes": {"origin": "batch"}, "messageId": "9002", "publishTime": "2026-03-02T10:00:08Z"})
w('gcp/pubsub_bad_base64.json', {"message": {"data": "!!!not base64!!!", "messageId": "9003"}, "subscription": "projects/acme-prod/subscriptions/audit-push"})
