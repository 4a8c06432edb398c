//! Sigma field names onto the normalized schema: a column where the column holds the
//! field exactly, a JSON path into `request`, `response` or `additional` for the
//! documents CloudTrail and Cloud Audit Logs nest, and a JSON path into `raw` (the
//! event as read) for the other fields of the source record. A name that is not a
//! field of the source record is an error: never SQL that silently matches nothing.

/// The log source of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `product: aws`, `service: cloudtrail`
    CloudTrail,
    /// `product: gcp`, `service: gcp.audit`
    GcpAudit,
}

impl Source {
    pub fn provider(self) -> &'static str {
        match self {
            Self::CloudTrail => "aws",
            Self::GcpAudit => "gcp",
        }
    }
}

/// Where a field is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The SQL expression giving the field as text (NULL when absent).
    pub sql: String,
    /// Its path in the source record, for writing fixture events.
    pub path: Vec<String>,
    /// Read from `raw`: needs the raw column (on by default).
    pub raw: bool,
}

/// CloudTrail record fields held exactly by a column.
const CLOUDTRAIL_COLUMNS: [(&str, &str); 11] = [
    ("eventSource", "service"),
    ("eventName", "operation"),
    ("awsRegion", "region"),
    ("sourceIPAddress", "src_ip"),
    ("userAgent", "user_agent"),
    ("errorCode", "error_code"),
    ("errorMessage", "error_message"),
    ("eventType", "event_type"),
    ("eventID", "event_id"),
    ("userIdentity.type", "actor_type"),
    ("userIdentity.invokedBy", "actor_invoked_by"),
];

/// CloudTrail record fields (and objects) read from `raw`.
const CLOUDTRAIL_RAW: [&str; 20] = [
    "userIdentity",
    "recipientAccountId",
    "readOnly",
    "eventVersion",
    "eventTime",
    "eventCategory",
    "managementEvent",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "apiVersion",
    "resources",
    "serviceEventDetails",
    "sessionCredentialFromConsole",
    "tlsDetails",
    "requestID",
    "addendum",
    "edgeDeviceDetails",
    "insightDetails",
    "status",
];

/// Cloud Audit Log fields held exactly by a column (paths without `protoPayload.`).
const GCP_COLUMNS: [(&str, &str); 3] = [
    ("serviceName", "service"),
    ("methodName", "operation"),
    ("resourceName", "resource"),
];

/// `LogEntry` fields (outside `protoPayload`) read from `raw`.
const GCP_ENTRY: [&str; 11] = [
    "logName",
    "resource",
    "severity",
    "insertId",
    "timestamp",
    "receiveTimestamp",
    "labels",
    "operation",
    "trace",
    "spanId",
    "sourceLocation",
];

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn json(column: &str, path: &[String]) -> String {
    if path.is_empty() {
        return column.to_owned();
    }
    let keys: Vec<String> = path.iter().map(|k| quote(k)).collect();
    // A scalar as text; an object or array as its JSON text.
    format!(
        "coalesce(json_as_text({column}, {keys}), nullif(json_get_json({column}, {keys}), 'null'))",
        keys = keys.join(", ")
    )
}

fn split(name: &str) -> Vec<String> {
    name.split('.').map(str::to_owned).collect()
}

/// The target of field `name` in rules of `source`, or why it has none.
pub fn map_field(source: Source, name: &str) -> Result<Target, String> {
    match source {
        Source::CloudTrail => cloudtrail(name),
        Source::GcpAudit => gcp(name),
    }
}

fn cloudtrail(name: &str) -> Result<Target, String> {
    let path = split(name);
    if let Some((_, column)) = CLOUDTRAIL_COLUMNS.iter().find(|(f, _)| *f == name) {
        return Ok(Target {
            sql: (*column).to_owned(),
            path,
            raw: false,
        });
    }
    for (document, column) in [
        ("requestParameters", "request"),
        ("responseElements", "response"),
        ("additionalEventData", "additional"),
    ] {
        if path[0] == document {
            return Ok(Target {
                sql: json(column, &path[1..]),
                path,
                raw: false,
            });
        }
    }
    if CLOUDTRAIL_RAW.contains(&path[0].as_str()) {
        return Ok(Target {
            sql: json("raw", &path),
            path,
            raw: true,
        });
    }
    Err(format!(
        "`{name}` is not a CloudTrail record field that demarc maps (see docs/sigma.md)"
    ))
}

fn gcp(name: &str) -> Result<Target, String> {
    // `gcp.audit.method_name` is pySigma's name for the method; `data.` prefixes the
    // entry in some exports.
    let name = name.strip_prefix("data.").unwrap_or(name);
    let path = if name == "gcp.audit.method_name" {
        vec!["protoPayload".to_owned(), "methodName".to_owned()]
    } else {
        split(name)
    };
    if path[0] == "protoPayload" && path.len() > 1 {
        let inner = path[1..].join(".");
        if let Some((_, column)) = GCP_COLUMNS.iter().find(|(f, _)| *f == inner) {
            return Ok(Target {
                sql: (*column).to_owned(),
                path,
                raw: false,
            });
        }
        for (document, column) in [("request", "request"), ("response", "response")] {
            if path[1] == document {
                return Ok(Target {
                    sql: json(column, &path[2..]),
                    path,
                    raw: false,
                });
            }
        }
        return Ok(Target {
            sql: json("raw", &path),
            path,
            raw: true,
        });
    }
    if GCP_ENTRY.contains(&path[0].as_str()) {
        return Ok(Target {
            sql: json("raw", &path),
            path,
            raw: true,
        });
    }
    Err(format!(
        "`{name}` is not a Cloud Audit Logs field that demarc maps (see docs/sigma.md)"
    ))
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    quote(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_columns_documents_or_raw() {
        let sql = |s, n| map_field(s, n).map(|t| t.sql);
        assert_eq!(
            sql(Source::CloudTrail, "eventName").as_deref(),
            Ok("operation")
        );
        assert_eq!(
            sql(Source::CloudTrail, "requestParameters.attribute").as_deref(),
            Ok(
                "coalesce(json_as_text(request, 'attribute'), nullif(json_get_json(request, \
                'attribute'), 'null'))"
            )
        );
        assert_eq!(
            sql(Source::CloudTrail, "requestParameters").as_deref(),
            Ok("request")
        );
        assert!(map_field(Source::CloudTrail, "userIdentity.arn").is_ok_and(|t| t.raw));
        assert!(map_field(Source::CloudTrail, "EventName").is_err());
        assert_eq!(
            sql(Source::GcpAudit, "gcp.audit.method_name").as_deref(),
            Ok("operation")
        );
        assert_eq!(
            sql(Source::GcpAudit, "data.protoPayload.serviceName").as_deref(),
            Ok("service")
        );
        assert!(
            map_field(Source::GcpAudit, "protoPayload.authorizationInfo.granted")
                .is_ok_and(|t| t.raw)
        );
        assert!(map_field(Source::GcpAudit, "method").is_err());
    }
}
