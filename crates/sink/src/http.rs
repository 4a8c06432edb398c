//! HTTP sinks: a signed webhook (Standard Webhooks), a Slack incoming webhook, the
//! PagerDuty Events API v2. 2xx delivers; 408, 429, 5xx, timeouts and connection
//! errors are retried (after `Retry-After` when given); any other status is a refusal,
//! kept with the response body for the dead-letter output.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use crate::deliver::{Outcome, Transport};
use crate::notice::{self, BodyFormat, Notice};
use crate::store::Spooled;

/// The most of a response body kept for the dead-letter output.
const RESPONSE_LIMIT: u64 = 4096;

/// What the HTTP sinks share: where, how long to wait, extra headers.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    pub url: String,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
}

/// How an HTTP sink shapes its requests.
#[derive(Debug, Clone)]
pub enum HttpKind {
    /// The notice as JSON (`format`), signed when a secret is set.
    Webhook {
        format: BodyFormat,
        secret: Option<Vec<u8>>,
    },
    /// A Slack message, with a link template.
    Slack { link: Option<String> },
    /// A PagerDuty event for `routing_key`.
    PagerDuty {
        routing_key: String,
        link: Option<String>,
    },
}

/// An HTTP sink.
#[derive(Debug)]
pub struct HttpSink {
    target: HttpTarget,
    kind: HttpKind,
    agent: ureq::Agent,
}

/// The key of a Standard Webhooks secret: the base64 after `whsec_`, or the text
/// itself for a secret without the prefix.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    let secret = secret.trim();
    match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the text after `whsec_` is not base64: {e}")),
        None if secret.is_empty() => Err("the secret is empty".into()),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the Standard Webhooks signature.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

impl HttpSink {
    pub fn new(target: HttpTarget, kind: HttpKind) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(target.timeout))
            .http_status_as_error(false)
            // A redirect of a POST is not followed: it is refused, with its status, for
            // the dead-letter output (the URL needs fixing).
            .max_redirects(0)
            .user_agent(concat!("demarc/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Self {
            target,
            kind,
            agent,
        }
    }

    fn body(&self, notice: &Notice) -> Vec<u8> {
        let value = match &self.kind {
            HttpKind::Webhook { format, .. } => return format.render(notice),
            HttpKind::Slack { link } => notice::slack(notice, link.as_deref()),
            HttpKind::PagerDuty { routing_key, link } => {
                notice::pagerduty(notice, routing_key, link.as_deref())
            }
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    fn post(&self, notice: &Notice) -> Outcome {
        let body = self.body(notice);
        let mut request = self
            .agent
            .post(&self.target.url)
            .header("content-type", "application/json");
        for (name, value) in &self.target.headers {
            request = request.header(name, value);
        }
        if let HttpKind::Webhook { secret, .. } = &self.kind {
            let id = notice.message_id();
            let timestamp = chrono::Utc::now().timestamp();
            if let Some(key) = secret {
                request = request.header("webhook-signature", sign(key, &id, timestamp, &body));
            }
            request = request
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string());
        }
        match request.send(&body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
                let mut text = Vec::new();
                // What the body says is only kept for a failure; a read error leaves it
                // short.
                let _ = response
                    .body_mut()
                    .as_reader()
                    .take(RESPONSE_LIMIT)
                    .read_to_end(&mut text);
                let text = String::from_utf8_lossy(&text).into_owned();
                classify(status, text, retry_after)
            }
            Err(error) => Outcome::Retry {
                reason: format!("{}: {error}", self.target.url),
                after: None,
            },
        }
    }
}

/// What an HTTP status means for delivery.
pub fn classify(status: u16, body: String, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}: {}", body.trim()),
            after: retry_after,
        },
        _ => Outcome::Refused {
            status: Some(status),
            response: body,
        },
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(wait.max(0) as u64))
}

impl Transport for HttpSink {
    /// Requests still go one at a time, in order; taking them in runs lets the spool
    /// remove the confirmed ones in one transaction (one fsync) instead of one each.
    fn batch(&self) -> usize {
        100
    }

    fn send(&mut self, notices: &[Spooled]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(notices.len());
        for spooled in notices {
            let outcome = self.post(&spooled.notice);
            let retry = matches!(outcome, Outcome::Retry { .. });
            outcomes.push(outcome);
            if retry {
                break;
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn statuses_retry_or_refuse_as_documented() {
        assert_eq!(classify(204, String::new(), None), Outcome::Delivered);
        for status in [408, 429, 500, 503] {
            assert!(
                matches!(classify(status, String::new(), None), Outcome::Retry { .. }),
                "{status}"
            );
        }
        assert_eq!(
            classify(400, "bad field".into(), None),
            Outcome::Refused {
                status: Some(400),
                response: "bad field".into()
            }
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
