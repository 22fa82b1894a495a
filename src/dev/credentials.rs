//! The per-session AWS credentials of one `wsstack dev`: random keys that every handler process
//! gets instead of the developer's own (the emulator needs none), and that the local management
//! API asks for. Made here and checked here; handing them out is `read_back`'s and `session`'s.
//!
//! A handler signs its `@connections` calls with them through the AWS SDK (SigV4), so a call
//! whose `Authorization` header names this session's access key id comes from a process dev gave
//! them to (or from one that read them from dev's session note, which only its owner can read).
//! A web page cannot send that header in a CORS simple request, and dev grants no preflight.
//! The signature itself is not verified: the access key id is as random as a secret here, and
//! the test functions that post by hand (std only, no HMAC) could not sign.

use hyper::header::HeaderValue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl SessionCredentials {
    /// Fresh keys from the operating system's random source (UUID v4: 122 random bits each).
    pub fn generate() -> SessionCredentials {
        let random = || uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        SessionCredentials {
            access_key_id: format!("WSSTACKDEV{}", random()),
            secret_access_key: format!("{}{}", random(), random()).to_lowercase(),
        }
    }

    /// Whether `authorization` is a SigV4 header whose credential is this session's access key id
    /// (`AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=...`).
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), Refusal> {
        let access_key_id = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(access_key_id_of)
            .ok_or(Refusal::Unsigned)?;
        if constant_time_eq(access_key_id.as_bytes(), self.access_key_id.as_bytes()) {
            Ok(())
        } else {
            Err(Refusal::UnknownKey)
        }
    }
}

/// Why a call is refused; API Gateway answers both with 403 (an IAM-authorized resource).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// No SigV4 `Authorization` header: `MissingAuthenticationTokenException`.
    Unsigned,
    /// Signed with keys that are not this session's: `UnrecognizedClientException`.
    UnknownKey,
}

impl Refusal {
    /// The error type (`x-amzn-ErrorType`) and message API Gateway gives.
    pub fn error(&self) -> (&'static str, &'static str) {
        match self {
            Refusal::Unsigned => ("MissingAuthenticationTokenException", "Missing Authentication Token"),
            Refusal::UnknownKey => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
        }
    }
}

/// The access key id of a SigV4 `Authorization` header.
fn access_key_id_of(header: &str) -> Option<&str> {
    let rest = header
        .trim_start()
        .strip_prefix("AWS4-HMAC-SHA256")
        .filter(|rest| rest.starts_with(' '))?;
    let credential = rest
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))?;
    credential.split('/').next().filter(|id| !id.is_empty())
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    #[test]
    fn only_a_sigv4_header_with_this_sessions_access_key_id_is_authorized() {
        let session = SessionCredentials::generate();
        let signed = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
            session.access_key_id
        );
        assert_eq!(session.check(Some(&header(&signed))), Ok(()));
        let other = SessionCredentials::generate();
        assert_eq!(other.check(Some(&header(&signed))), Err(Refusal::UnknownKey));
        assert_eq!(session.check(None), Err(Refusal::Unsigned));
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
            "AWS4-HMAC-SHA256 Credential=/20260101/us-east-1/execute-api/aws4_request",
            &signed.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
        ] {
            assert_eq!(session.check(Some(&header(bad))), Err(Refusal::Unsigned), "{bad}");
        }
    }

    #[test]
    fn every_session_gets_keys_of_its_own() {
        let (a, b) = (SessionCredentials::generate(), SessionCredentials::generate());
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert!(a.access_key_id.len() >= 40 && a.secret_access_key.len() == 64);
    }
}
