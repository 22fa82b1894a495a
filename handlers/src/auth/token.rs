//! Verifying a JWT: its header (which algorithm, which key id), then signature, `exp`, `nbf`, `iss`
//! and `aud` through `jsonwebtoken`. Every failure is a [`Refusal`] whose text never quotes the
//! token or a key; finding the key (a secret, a JWKS) is the caller's business.

use std::collections::HashSet;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// Longest token accepted, in bytes; API Gateway's own header limit is about 10 KB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `exp - iat` accepted unless the stack says otherwise: 24 hours. Cognito lets a pool
/// issue ID and access tokens for at most one day, so every OpenID token of a common issuer fits,
/// while a leaked token (or one minted with a careless `--ttl`) is worthless after a day. A token
/// is only checked at `$connect`, and a connection lasts at most 2 hours, so nothing longer helps.
pub const DEFAULT_MAX_LIFETIME_SECONDS: u64 = 86_400;

/// The claims of a verified token.
pub type Claims = Map<String, Value>;

/// Why a token was refused. `Display` is safe to log: it names the check, never the token's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed(&'static str),
    AlgorithmRefused(String),
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    UnknownKey,
    KeyMismatch,
    KeysUnavailable(String),
    BadClaims(String),
    /// The header lists `crit` extensions: RFC 7515 (4.1.11) says to refuse what is not understood,
    /// and wsstack understands none.
    CriticalHeader,
    /// `iat`/`exp` say the token lives longer than the stack allows, or was issued in the future.
    Lifetime(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no token in Sec-WebSocket-Protocol or access_token"),
            Refusal::Malformed(what) => write!(f, "malformed token: {what}"),
            Refusal::AlgorithmRefused(alg) => write!(f, "algorithm {alg:?} is not accepted"),
            Refusal::BadSignature => f.write_str("bad signature"),
            Refusal::Expired => f.write_str("token expired"),
            Refusal::NotYetValid => f.write_str("token not yet valid (nbf)"),
            Refusal::WrongIssuer => f.write_str("wrong or missing issuer"),
            Refusal::WrongAudience => f.write_str("wrong or missing audience"),
            Refusal::UnknownKey => f.write_str("no key with this kid in the issuer's key set"),
            Refusal::KeyMismatch => f.write_str("the key does not fit the token's algorithm"),
            Refusal::KeysUnavailable(why) => write!(f, "the issuer's key set is unavailable: {why}"),
            Refusal::BadClaims(why) => write!(f, "bad claims: {why}"),
            Refusal::CriticalHeader => f.write_str("the header lists crit extensions, which are not understood"),
            Refusal::Lifetime(why) => write!(f, "lifetime refused: {why}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// What the header says, read before any key is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// The algorithms wsstack accepts; anything else (`none` above all) is refused by name.
pub fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

/// Reads the header of a compact JWS: three non-empty base64url parts, an accepted `alg`.
pub fn read_header(token: &str) -> Result<TokenHeader, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Malformed("longer than 8 KB"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(Refusal::Malformed("not three dot-separated parts"));
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| Refusal::Malformed("header is not base64url"))?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| Refusal::Malformed("header is not JSON"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(Refusal::Malformed("header has no alg")),
    };
    let alg = accepted_algorithm(alg).ok_or_else(|| Refusal::AlgorithmRefused(alg.clone()))?;
    // Whatever it lists (even an empty list, which RFC 7515 forbids): jsonwebtoken ignores the
    // header, so a token relying on an extension would otherwise be read as if it had none.
    if header.get("crit").is_some() {
        return Err(Refusal::CriticalHeader);
    }
    if parts[1].is_empty() || parts[2].is_empty() {
        return Err(Refusal::Malformed("empty payload or signature"));
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Refusal::Malformed("kid is not a string")),
    };
    Ok(TokenHeader { alg, kid })
}

/// What a verified token must also say about who issued it and for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Verifies the signature with `key` for exactly `alg`, then `exp` (required), `nbf`, and the
/// issuer and audience when expected.
pub fn verify(token: &str, alg: Algorithm, key: &DecodingKey, expect: &Expectations) -> Result<Claims, Refusal> {
    if key.family() != alg.family() {
        return Err(Refusal::KeyMismatch);
    }
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    let mut required: HashSet<String> = HashSet::from(["exp".to_string()]);
    match &expect.issuer {
        Some(issuer) => {
            validation.set_issuer(&[issuer]);
            required.insert("iss".to_string());
        }
        None => validation.iss = None,
    }
    match &expect.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.insert("aud".to_string());
        }
        None => validation.validate_aud = false,
    }
    validation.required_spec_claims = required;
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| refusal_of(error.kind()))
}

fn refusal_of(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::InvalidSignature => Refusal::BadSignature,
        ErrorKind::ExpiredSignature => Refusal::Expired,
        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
        ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
        ErrorKind::InvalidAudience => Refusal::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => Refusal::WrongIssuer,
            "aud" => Refusal::WrongAudience,
            claim => Refusal::BadClaims(format!("claim {claim} is missing")),
        },
        ErrorKind::InvalidClaimFormat(claim) => Refusal::BadClaims(format!("claim {claim} has the wrong type")),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            Refusal::KeyMismatch
        }
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => Refusal::KeyMismatch,
        ErrorKind::Base64(_) => Refusal::Malformed("a part is not base64url"),
        ErrorKind::Json(_) => Refusal::Malformed("claims are not a JSON object"),
        ErrorKind::Utf8(_) => Refusal::Malformed("a part is not UTF-8"),
        _ => Refusal::Malformed("rejected by the JWT decoder"),
    }
}

/// Checks the token's age against `max_seconds` at `now` (epoch seconds): `iat` is required (a
/// token without it has no provable lifetime), may not lie in the future (beyond the leeway: else
/// `iat` far ahead with `exp` just after it would pass the cap), and `exp - iat` may not exceed the
/// maximum. Call after [`verify`], which has checked that `exp` is a number and not past.
pub fn check_lifetime(claims: &Claims, max_seconds: u64, now: u64) -> Result<(), Refusal> {
    let seconds = |name: &str| match claims.get(name) {
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|value| value.is_finite())
            .ok_or_else(|| Refusal::BadClaims(format!("claim {name} has the wrong type"))),
        Some(_) => Err(Refusal::BadClaims(format!("claim {name} has the wrong type"))),
        None => Err(Refusal::BadClaims(format!(
            "claim {name} is missing (needed to check the token's lifetime)"
        ))),
    };
    let (issued, expires) = (seconds("iat")?, seconds("exp")?);
    if issued > (now + LEEWAY_SECONDS) as f64 {
        return Err(Refusal::Lifetime("issued in the future (iat)".to_string()));
    }
    if expires - issued > max_seconds as f64 {
        return Err(Refusal::Lifetime(format!(
            "exp - iat is {} s, more than the stack's maximum of {max_seconds} s",
            (expires - issued).round()
        )));
    }
    Ok(())
}

/// The stack's HS256 keys as Secrets Manager's version stages hold them: AWSCURRENT, and after a
/// rotation AWSPREVIOUS, accepted until `previous_until` (epoch seconds) so that tokens minted
/// before the rotation keep working for one maximum lifetime and a leaked old key stops after it.
#[derive(Debug, Clone)]
pub struct StackKeys {
    pub current: SecretVerifier,
    pub previous: Option<(SecretVerifier, u64)>,
}

impl StackKeys {
    /// Verifies with the current key, then (on a bad signature only) with the previous one while
    /// its window lasts at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, Refusal> {
        match self.current.verify(token) {
            Err(Refusal::BadSignature) => match &self.previous {
                Some((previous, until)) if now < *until => previous.verify(token),
                _ => Err(Refusal::BadSignature),
            },
            other => other,
        }
    }
}

/// Verifies HS256 tokens signed with the stack's own secret.
#[derive(Clone)]
pub struct SecretVerifier {
    key: DecodingKey,
    expect: Expectations,
}

impl std::fmt::Debug for SecretVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVerifier")
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

/// Shortest stack secret accepted, in bytes: HS256 wants a key at least as long as its hash.
pub const MIN_SECRET_BYTES: usize = 32;

impl SecretVerifier {
    pub fn new(secret: &[u8], expect: Expectations) -> anyhow::Result<SecretVerifier> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "the HS256 secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
            secret.len()
        );
        Ok(SecretVerifier {
            key: DecodingKey::from_secret(secret),
            expect,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Refusal> {
        let header = read_header(token)?;
        if header.alg != Algorithm::HS256 {
            return Err(Refusal::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        verify(token, Algorithm::HS256, &self.key, &self.expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn alg_none_and_unknown_algorithms_are_refused_by_name() {
        let payload = b64(&serde_json::json!({"sub": "u", "exp": 4_000_000_000_u64}));
        let none = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})));
        assert_eq!(read_header(&none), Err(Refusal::AlgorithmRefused("none".into())));
        let hs512 = format!("{}.{payload}.c2ln", b64(&serde_json::json!({"alg": "HS512"})));
        assert_eq!(read_header(&hs512), Err(Refusal::AlgorithmRefused("HS512".into())));
    }

    #[test]
    fn malformed_tokens_are_named() {
        assert!(matches!(read_header("abc"), Err(Refusal::Malformed(_))));
        assert!(matches!(read_header("!!.a.b"), Err(Refusal::Malformed(_))));
        let header = b64(&serde_json::json!({"alg": "HS256"}));
        assert!(matches!(
            read_header(&format!("{header}..sig")),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            read_header(&format!("{header}.e30.")),
            Err(Refusal::Malformed(_))
        ));
        let long = format!("{header}.{}.sig", "a".repeat(MAX_TOKEN_BYTES));
        assert!(matches!(read_header(&long), Err(Refusal::Malformed(_))));
    }

    /// Signed by hand: any header, `crit` included.
    fn hs256(secret: &[u8], header: Value, claims: Value) -> String {
        let signing_input = format!("{}.{}", b64(&header), b64(&claims));
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{signing_input}.{signature}")
    }

    const KEY_1: &[u8] = b"first-key-of-at-least-thirty-two-bytes";
    const KEY_2: &[u8] = b"second-key-of-at-least-thirty-two-bytes";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn a_token_with_crit_is_refused_even_when_well_signed() {
        let claims = serde_json::json!({"sub": "u", "iat": now(), "exp": now() + 60});
        let critical = hs256(
            KEY_1,
            serde_json::json!({"alg": "HS256", "crit": ["exp-policy"], "exp-policy": "lenient"}),
            claims.clone(),
        );
        assert_eq!(read_header(&critical), Err(Refusal::CriticalHeader));
        let verifier = SecretVerifier::new(KEY_1, Expectations::default()).unwrap();
        assert_eq!(verifier.verify(&critical), Err(Refusal::CriticalHeader));
        let plain = hs256(KEY_1, serde_json::json!({"alg": "HS256"}), claims);
        assert!(verifier.verify(&plain).is_ok(), "the same token without crit verifies");
    }

    #[test]
    fn lifetimes_over_the_maximum_or_without_iat_are_refused() {
        let at = 1_700_000_000_u64;
        let check = |claims: Value| check_lifetime(claims.as_object().unwrap(), 3600, at);
        assert_eq!(check(serde_json::json!({"iat": at, "exp": at + 3600})), Ok(()));
        assert_eq!(check(serde_json::json!({"iat": at - 10, "exp": at + 100})), Ok(()));
        // `wsstack token --ttl 36500d`: a hundred years.
        let century = check(serde_json::json!({"iat": at, "exp": at + 36_500 * 86_400}));
        assert!(
            matches!(century, Err(Refusal::Lifetime(ref why)) if why.contains("3600")),
            "{century:?}"
        );
        assert!(matches!(
            check(serde_json::json!({"iat": at, "exp": at + 3601})),
            Err(Refusal::Lifetime(_))
        ));
        // iat pushed into the future to keep exp - iat small while exp is far away.
        let ahead = at + 100 * 365 * 86_400;
        assert!(matches!(
            check(serde_json::json!({"iat": ahead, "exp": ahead + 60})),
            Err(Refusal::Lifetime(_))
        ));
        assert!(matches!(
            check(serde_json::json!({"exp": at + 60})),
            Err(Refusal::BadClaims(_))
        ));
        assert!(matches!(
            check(serde_json::json!({"iat": "yesterday", "exp": at + 60})),
            Err(Refusal::BadClaims(_))
        ));
    }

    #[test]
    fn the_previous_key_verifies_only_within_its_window() {
        let claims = serde_json::json!({"sub": "u", "iat": now(), "exp": now() + 60});
        let by_old = hs256(KEY_1, serde_json::json!({"alg": "HS256"}), claims.clone());
        let by_new = hs256(KEY_2, serde_json::json!({"alg": "HS256"}), claims);
        let by_other = hs256(
            b"third-key-of-at-least-thirty-two-bytes!",
            serde_json::json!({"alg": "HS256"}),
            serde_json::json!({"sub": "u", "exp": now() + 60}),
        );
        let verifier = |key: &[u8]| SecretVerifier::new(key, Expectations::default()).unwrap();
        let until = now() + 100;
        let keys = StackKeys {
            current: verifier(KEY_2),
            previous: Some((verifier(KEY_1), until)),
        };
        assert!(keys.verify(&by_new, now()).is_ok());
        assert!(keys.verify(&by_old, until - 1).is_ok(), "within the window");
        assert_eq!(keys.verify(&by_old, until), Err(Refusal::BadSignature), "window over");
        assert!(
            keys.verify(&by_new, until + 1_000).is_ok(),
            "the current key has no window"
        );
        assert_eq!(keys.verify(&by_other, now()), Err(Refusal::BadSignature));
        let unrotated = StackKeys {
            current: verifier(KEY_2),
            previous: None,
        };
        assert_eq!(unrotated.verify(&by_old, now()), Err(Refusal::BadSignature));
    }

    #[test]
    fn short_secrets_are_refused() {
        let error = SecretVerifier::new(b"too short", Expectations::default()).unwrap_err();
        assert!(error.to_string().contains("at least 32"), "{error}");
    }
}
