//! Archives in object storage: `s3://bucket/prefix` and `gs://bucket/prefix`, through
//! `object_store`, with credentials found the way each cloud's own tools find them.
//!
//! - S3: the `AWS_*` environment variables; else the static keys of the profile
//!   `AWS_PROFILE` (or `default`) in `~/.aws/credentials` and its region in
//!   `~/.aws/config`; else web identity, the container's or the instance's credentials.
//!   A bucket's region is asked of S3 when none is configured.
//! - GCS: `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS`, else the
//!   application default credentials that `gcloud auth application-default login`
//!   writes, else the instance's service account.
//!
//! Requests that fail with a server error or throttling (503 SlowDown, 429) are retried
//! with exponential backoff by `object_store`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::{Error, Result};

/// How to reach object storage.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Another endpoint than the cloud's: an S3-compatible store
    /// (`http://localhost:9000`) or a GCS emulator. `http://` is allowed for it.
    pub endpoint: Option<String>,
    /// Send requests unsigned (public buckets, emulators without authentication).
    pub unsigned: bool,
    /// Attempts after the first for a request that failed with a server error or
    /// throttling.
    pub retries: usize,
}

/// One bucket: how its objects are named (`s3://bucket`) and its client.
#[derive(Debug)]
pub struct Bucket {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
}

/// An object to read.
#[derive(Debug, Clone)]
pub struct Object {
    pub bucket: Arc<Bucket>,
    pub location: ObjectPath,
    pub size: u64,
}

impl Object {
    /// Its full name, as reports and alert provenance show it.
    pub fn url(&self) -> String {
        format!("{}/{}", self.bucket.url, self.location)
    }
}

/// Whether a command-line input names object storage rather than a local path.
pub fn is_url(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("gs://")
}

/// The bucket of `url` and the prefix under it.
pub async fn open(url: &str, options: &StoreOptions) -> Result<(Arc<Bucket>, ObjectPath)> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::Config(format!("`{url}` is not a valid URL: {e}")))?;
    let bucket = parsed
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Config(format!("`{url}` names no bucket (s3://BUCKET/PREFIX)")))?
        .to_owned();
    let prefix = ObjectPath::from_url_path(parsed.path())
        .map_err(|e| Error::Config(format!("`{url}`: the prefix is not a valid key: {e}")))?;
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: options.retries,
        retry_timeout: Duration::from_secs(5 * 60),
    };
    let allow_http = options
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let client = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(120));
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "s3" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(retry)
                .with_client_options(client.clone())
                .with_skip_signature(options.unsigned);
            let profile = if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && !options.unsigned {
                aws_profile()?
            } else {
                None
            };
            if let Some(keys) = profile.as_ref().and_then(|p| p.keys.as_ref()) {
                builder = builder
                    .with_access_key_id(&keys.access_key_id)
                    .with_secret_access_key(&keys.secret_access_key);
                if let Some(token) = &keys.session_token {
                    builder = builder.with_token(token);
                }
            }
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok()
                .or_else(|| profile.and_then(|p| p.region));
            let region = match (region, &options.endpoint) {
                (Some(region), _) => region,
                (None, Some(_)) => "us-east-1".to_owned(),
                (None, None) => object_store::aws::resolve_bucket_region(&bucket, &client)
                    .await
                    .map_err(|e| store_error(url, "find the region of", e))?,
            };
            builder = builder.with_region(region);
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_endpoint(endpoint).with_allow_http(allow_http);
            }
            Arc::new(builder.build().map_err(|e| store_error(url, "open", e))?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(retry)
                .with_client_options(client);
            match (&options.endpoint, options.unsigned) {
                // An emulator: no OAuth at all. object_store still asks for a token
                // before an upload when told only to skip signatures.
                (Some(endpoint), true) => {
                    builder = builder
                        .with_base_url(endpoint.trim_end_matches('/'))
                        .with_service_account_key(NO_OAUTH);
                }
                (Some(endpoint), false) => {
                    builder = builder.with_base_url(endpoint.trim_end_matches('/'));
                }
                (None, unsigned) => builder = builder.with_skip_signature(unsigned),
            }
            Arc::new(builder.build().map_err(|e| store_error(url, "open", e))?)
        }
        other => {
            return Err(Error::Config(format!(
                "`{url}`: `{other}://` is not a store demarc reads (s3:// or gs://)"
            )));
        }
    };
    let url = format!("{}://{bucket}", parsed.scheme());
    Ok((Arc::new(Bucket { url, store }), prefix))
}

/// A service account that asks for no OAuth token: GCS emulators.
const NO_OAUTH: &str =
    r#"{"private_key": "", "private_key_id": "", "client_email": "", "disable_oauth": true}"#;

/// An `object_store` error, with what was being done to which URL.
pub(crate) fn store_error(url: &str, action: &str, error: object_store::Error) -> Error {
    Error::Fatal(format!(
        "cannot {action} `{url}`: {}",
        demarc_model::error_chain(&error)
    ))
}

/// What demarc takes from an AWS CLI profile: static keys and the region.
#[derive(Debug)]
struct Profile {
    keys: Option<Keys>,
    region: Option<String>,
}

#[derive(Debug)]
struct Keys {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// The profile `AWS_PROFILE` (or `default`) of the AWS CLI's files; an error if it gets
/// its credentials in a way demarc does not follow (SSO, a process, a role).
fn aws_profile() -> Result<Option<Profile>> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let read = |path: Option<PathBuf>| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let credentials = ini_section(
        &read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials")),
        &name,
    );
    // In `config`, profiles other than `default` are written `[profile NAME]`.
    let config_text = read(file("AWS_CONFIG_FILE", "config"));
    let config = ini_section(&config_text, &format!("profile {name}"))
        .or_else(|| ini_section(&config_text, &name));
    let mut keys = config.clone().unwrap_or_default();
    keys.extend(credentials.unwrap_or_default());
    let region = config.and_then(|c| c.get("region").cloned());
    match (
        keys.get("aws_access_key_id"),
        keys.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(Profile {
            keys: Some(Keys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: keys.get("aws_session_token").cloned(),
            }),
            region,
        })),
        _ => {
            let other = [
                "sso_session",
                "sso_start_url",
                "credential_process",
                "role_arn",
            ]
            .into_iter()
            .find(|k| keys.contains_key(*k));
            match other {
                Some(key) => Err(Error::Config(format!(
                    "the AWS profile `{name}` gets its credentials through `{key}`, which \
                     demarc does not follow: export them first, for example with \
                     `eval \"$(aws configure export-credentials --profile {name} --format env)\"`"
                ))),
                // No such profile, or no keys in it: the other providers (web identity,
                // container, instance metadata) are tried by the client.
                None => Ok(Some(Profile { keys: None, region })),
            }
        }
    }
}

/// The keys of `[section]` in an INI text (lower-cased keys, trimmed values).
fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            found
                .get_or_insert_with(HashMap::new)
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_ini_sections() {
        let text = "[default]\naws_access_key_id = AKIA1\n# comment\n\
                    [profile audit]\nregion=eu-west-1\n aws_secret_access_key = s ";
        let default = ini_section(text, "default").unwrap_or_default();
        assert_eq!(
            default.get("aws_access_key_id").map(String::as_str),
            Some("AKIA1")
        );
        let audit = ini_section(text, "profile audit").unwrap_or_default();
        assert_eq!(audit.get("region").map(String::as_str), Some("eu-west-1"));
        assert_eq!(
            audit.get("aws_secret_access_key").map(String::as_str),
            Some("s")
        );
        assert!(ini_section(text, "other").is_none());
    }

    #[test]
    fn only_s3_and_gcs_urls_are_remote() {
        assert!(is_url("s3://bucket/AWSLogs/"));
        assert!(is_url("gs://bucket"));
        assert!(!is_url("./s3:/bucket"));
        assert!(!is_url("/data/AWSLogs"));
    }
}
