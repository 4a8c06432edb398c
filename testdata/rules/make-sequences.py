# Writes the timed-sequence fixtures of the windowed rules under testdata/rules/ (run
# from testdata/). Each file is one sequence, {"Records": [...]} or a list of GCP
# entries, with event times at minute offsets from 10:00. Review the diff.
import json, os




def at(minute, second=0):
    hour = 10 + minute // 60
    return f"2026-03-02T{hour:02d}:{minute % 60:02d}:{second:02d}Z"


def login(eid, minute, ok=False, ip="198.51.100.7", second=0):
    e = {"eventVersion": "1.08",
         "userIdentity": {"type": "IAMUser", "principalId": "AIDAQEXAMPLEALICE001", "accountId": "111122223333",
                          "userName": "alice"},
         "eventTime": at(minute, second), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
         "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "Mozilla/5.0",
         "requestParameters": None, "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
         "additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"},
         "eventID": eid, "eventType": "AwsConsoleSignIn", "recipientAccountId": "111122223333"}
    if ok:
        e["userIdentity"]["arn"] = "arn:aws:iam::111122223333:user/alice"
    else:
        e["errorMessage"] = "Failed authentication"
    return e


def call(eid, minute, second, name, error="AccessDenied", who="arn:aws:iam::111122223333:user/ci-bot"):
    e = {"eventVersion": "1.08",
         "userIdentity": {"type": "IAMUser", "arn": who, "accountId": "111122223333", "principalId": "AIDAEXAMPLEBOT"},
         "eventTime": at(minute, second), "eventSource": "iam.amazonaws.com", "eventName": name,
         "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.30",
         "requestParameters": None, "responseElements": None, "eventID": eid, "eventType": "AwsApiCall",
         "recipientAccountId": "111122223333"}
    if error:
        e["errorCode"] = error
        e["errorMessage"] = "User is not authorized to perform this action"
    return e


def gcall(iid, minute, second, method, code=7, who="intruder@example.net"):
    return {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                             "status": {"code": code, "message": "PERMISSION_DENIED"} if code else {},
                             "authenticationInfo": {"principalEmail": who},
                             "requestMetadata": {"callerIp": "203.0.113.5"},
                             "serviceName": "compute.googleapis.com", "methodName": method,
                             "resourceName": "projects/acme/zones/us-central1-a/instances/web-1"},
            "insertId": iid, "timestamp": at(minute, second),
            "logName": "projects/acme/logs/cloudaudit.googleapis.com%2Factivity",
            "resource": {"type": "gce_instance", "labels": {"project_id": "acme"}}}


def s3(eid, minute, name, request, identity, error=None):
    e = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": at(minute),
         "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
         "sourceIPAddress": "203.0.113.20", "userAgent": "aws-cli/2.15.30", "requestParameters": request,
         "responseElements": None, "eventID": eid, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
    if error:
        e["errorCode"] = error
    return e


OWNER = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"}
ANONYMOUS = {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}
OTHER = {"type": "AssumedRole", "arn": "arn:aws:sts::444455556666:assumed-role/reader/x", "accountId": "444455556666"}
SAME = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/x", "accountId": "111122223333"}
PUBLIC_POLICY = {"bucketName": "reports", "bucketPolicy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}]}}
PRIVATE_POLICY = {"bucketName": "reports", "bucketPolicy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::reports/*"}]}}
PUBLIC_ACL = {"bucketName": "reports", "x-amz-acl": ["public-read"]}
READ = {"bucketName": "reports", "key": "q3.pdf"}


def write(rule, kind, name, events, gcp=False):
    d = f"rules/{rule}/{kind}"
    os.makedirs(d, exist_ok=True)
    body = events if gcp else {"Records": events}
    with open(f"{d}/{name}.json", "w") as f:
        json.dump(body, f, indent=2)
        f.write("\n")


r = "aws-console-brute-force-then-success"
write(r, "positive", "ten-failures-then-success",
      [login(f"bf-a-f{i}", i) for i in range(10)] + [login("bf-a-ok", 10, True)])
# Out of order: the success is logged first, the failures behind it (within lateness).
write(r, "positive", "out-of-order-twelve-failures",
      [login("bf-b-ok", 14, True)] + [login(f"bf-b-f{i}", i + 2) for i in range(12)])
write(r, "negative", "nine-failures-then-success",
      [login(f"bf-c-f{i}", i) for i in range(9)] + [login("bf-c-ok", 10, True)])
write(r, "negative", "success-after-the-window",
      [login(f"bf-d-f{i}", i) for i in range(10)] + [login("bf-d-ok", 25, True)])
write(r, "negative", "failures-from-elsewhere",
      [login(f"bf-e-f{i}", i, ip="192.0.2.44") for i in range(10)] + [login("bf-e-ok", 10, True)])
write(r, "negative", "outcome--ten-failures-no-success",
      [login(f"bf-f-f{i}", i) for i in range(11)])

r = "aws-access-denied-burst"
names = ["ListUsers", "ListRoles", "GetAccountAuthorizationDetails", "ListPolicies", "GetUser"]
write(r, "positive", "twenty-denials-in-four-minutes",
      [call(f"ad-a-{i}", i // 5, (i % 5) * 10, names[i % 5]) for i in range(20)])
write(r, "positive", "thirty-denials-mixed-codes",
      [call(f"ad-b-{i}", i // 10, i * 2 % 60, names[i % 5], "UnauthorizedOperation" if i % 2 else "AccessDenied")
       for i in range(30)])
write(r, "negative", "nineteen-denials",
      [call(f"ad-c-{i}", i // 5, (i % 5) * 10, names[i % 5]) for i in range(19)])
write(r, "negative", "twenty-denials-over-ten-minutes",
      [call(f"ad-d-{i}", i // 2, (i % 2) * 30, names[i % 5]) for i in range(20)])
write(r, "negative", "twenty-denials-two-principals",
      [call(f"ad-e-{i}", i // 5, (i % 5) * 10, names[i % 5],
            who="arn:aws:iam::111122223333:user/ci-bot" if i % 2 else "arn:aws:iam::111122223333:user/deploy")
       for i in range(20)])
write(r, "negative", "outcome--twenty-successful-calls",
      [call(f"ad-f-{i}", i // 5, (i % 5) * 10, names[i % 5], error=None) for i in range(20)])

r = "gcp-permission-denied-burst"
methods = ["v1.compute.instances.get", "v1.compute.instances.list", "v1.compute.disks.list",
           "v1.compute.firewalls.list", "v1.compute.networks.get"]
write(r, "positive", "twenty-denials-in-four-minutes",
      [gcall(f"pd-a-{i}", i // 5, (i % 5) * 10, methods[i % 5]) for i in range(20)], gcp=True)
write(r, "positive", "twenty-five-denials",
      [gcall(f"pd-b-{i}", i // 6, (i % 6) * 9, methods[i % 5]) for i in range(25)], gcp=True)
write(r, "negative", "nineteen-denials",
      [gcall(f"pd-c-{i}", i // 5, (i % 5) * 10, methods[i % 5]) for i in range(19)], gcp=True)
write(r, "negative", "outcome--twenty-successful-calls",
      [gcall(f"pd-d-{i}", i // 5, (i % 5) * 10, methods[i % 5], code=0) for i in range(20)], gcp=True)

r = "aws-s3-public-then-read"
write(r, "positive", "policy-then-anonymous-read",
      [s3("pr-a-put", 0, "PutBucketPolicy", PUBLIC_POLICY, OWNER),
       s3("pr-a-get", 20, "GetObject", READ, ANONYMOUS), s3("pr-a-get2", 30, "GetObject", READ, ANONYMOUS)])
write(r, "positive", "acl-then-other-account-read",
      [s3("pr-b-put", 0, "PutBucketAcl", PUBLIC_ACL, OWNER), s3("pr-b-get", 55, "GetObject", READ, OTHER)])
write(r, "negative", "read-after-the-hour",
      [s3("pr-c-put", 0, "PutBucketPolicy", PUBLIC_POLICY, OWNER), s3("pr-c-get", 75, "GetObject", READ, ANONYMOUS)])
write(r, "negative", "read-before-made-public",
      [s3("pr-d-get", 0, "GetObject", READ, ANONYMOUS), s3("pr-d-put", 5, "PutBucketPolicy", PUBLIC_POLICY, OWNER)])
write(r, "negative", "private-policy-then-own-account-read",
      [s3("pr-e-put", 0, "PutBucketPolicy", PRIVATE_POLICY, OWNER), s3("pr-e-get", 10, "GetObject", READ, OTHER),
       s3("pr-e-put2", 20, "PutBucketPolicy", PUBLIC_POLICY, OWNER), s3("pr-e-get2", 30, "GetObject", READ, SAME)])
write(r, "negative", "outcome--denied-read",
      [s3("pr-f-put", 0, "PutBucketPolicy", PUBLIC_POLICY, OWNER),
       s3("pr-f-get", 10, "GetObject", READ, ANONYMOUS, error="AccessDenied")])
