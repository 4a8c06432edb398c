//! Who may query: one bearer token, given to the server from the environment or a
//! file. Clients send it as `authorization: Bearer <token>` on every call, or log in
//! once with Basic credentials (any user name, the token as password: what JDBC and
//! ADBC clients do with a user and a password) and get the bearer token back.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The token every call must carry.
#[derive(Clone)]
pub struct Auth {
    token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { token: <secret> }")
    }
}

impl Auth {
    /// Refuses an empty token: a server open to anyone must not happen by mistake.
    pub fn new(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.len() < 16 {
            return Err("the Flight SQL token must be at least 16 characters".into());
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "the Flight SQL token must not contain spaces or control characters".into(),
            );
        }
        Ok(Self {
            token: token.to_owned(),
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Checks a call's `authorization: Bearer …` header.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let header = header(metadata)?;
        match header.strip_prefix("Bearer ") {
            Some(token) if same(token.trim(), &self.token) => Ok(()),
            Some(_) => Err(Status::unauthenticated("the bearer token is not valid")),
            None => Err(Status::unauthenticated(
                "send `authorization: Bearer <token>`, or log in with the Handshake call",
            )),
        }
    }

    /// The Handshake: Basic credentials (the token as password) or the bearer token
    /// itself; either way the answer is the bearer token.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let header = header(metadata)?;
        if header.starts_with("Bearer ") {
            return self.check(metadata);
        }
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return Err(Status::unauthenticated(
                "the Handshake takes `authorization: Basic …` or `Bearer …`",
            ));
        };
        let decoded = BASE64_STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Status::unauthenticated("the Basic credentials are not base64 of user:password")
            })?;
        let Some((_user, password)) = decoded.split_once(':') else {
            return Err(Status::unauthenticated(
                "the Basic credentials have no password",
            ));
        };
        if same(password, &self.token) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "wrong password (the password is the server's token)",
            ))
        }
    }
}

fn header(metadata: &MetadataMap) -> Result<&str, Status> {
    metadata
        .get("authorization")
        .ok_or_else(|| {
            Status::unauthenticated("no `authorization` header: this server needs a token")
        })?
        .to_str()
        .map_err(|_| Status::unauthenticated("the `authorization` header is not text"))
}

/// Compares without stopping at the first difference, so that timing does not tell
/// how much of a guess was right.
fn same(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut difference = u8::from(a.len() != b.len());
    for (i, &e) in b.iter().enumerate() {
        difference |= a.get(i).copied().unwrap_or(0) ^ e;
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("authorization", value.parse().expect("header"));
        map
    }

    #[test]
    fn bearer_and_basic_credentials_are_checked() {
        let auth = Auth::new("0123456789abcdef-token").expect("token");
        assert!(auth.check(&with("Bearer 0123456789abcdef-token")).is_ok());
        assert!(auth.check(&with("Bearer 0123456789abcdef-tokem")).is_err());
        assert!(
            auth.check(&with("Bearer 0123456789abcdef-token-and-more"))
                .is_err()
        );
        assert!(auth.check(&MetadataMap::new()).is_err());
        let basic =
            |user_password: &str| format!("Basic {}", BASE64_STANDARD.encode(user_password));
        assert!(
            auth.handshake(&with(&basic("analyst:0123456789abcdef-token")))
                .is_ok()
        );
        assert!(auth.handshake(&with(&basic("analyst:wrong"))).is_err());
        // Basic is for the Handshake only.
        assert!(
            auth.check(&with(&basic("analyst:0123456789abcdef-token")))
                .is_err()
        );
        assert!(Auth::new("short").is_err());
    }
}
