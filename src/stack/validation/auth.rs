//! The checks of `auth:` and `alarms:`: one way to trust tokens, https key URLs, named claims, a
//! token lifetime in range, an address SNS can mail. No AWS call.

use super::super::schema::{Auth, MAX_TOKEN_LIFETIME_RANGE};
use super::Problem;

/// Exactly one way to trust tokens; URLs the authorizer fetches keys from must be https.
pub(super) fn check(problems: &mut Vec<Problem>, auth: &Auth) {
    match (&auth.secret, &auth.issuer) {
        (Some(_), Some(_)) => problems.push(Problem::new(
            "auth.issuer",
            "give either `secret: generated` or an OpenID `issuer`, not both",
        )),
        (None, None) => problems.push(Problem::at_key(
            "auth",
            "say how tokens are trusted: `secret: generated` (HS256 with the stack's own secret) or `issuer` with `audience` (an OpenID issuer)",
        )),
        _ => {}
    }
    if auth.issuer.is_some() {
        match auth.audience.as_deref() {
            None => problems.push(Problem::at_key(
                "auth",
                "`issuer` needs `audience`: the client id (the `aud` claim) tokens must be issued for",
            )),
            Some(audience) if audience.trim().is_empty() => {
                problems.push(Problem::new("auth.audience", "must not be empty"))
            }
            Some(_) => {}
        }
    } else {
        for (field, value) in [("auth.audience", &auth.audience), ("auth.jwks_url", &auth.jwks_url)] {
            if value.is_some() {
                problems.push(Problem::new(
                    field,
                    "belongs to an OpenID `issuer`, which this `auth:` does not give",
                ));
            }
        }
    }
    let urls = [("auth.issuer", &auth.issuer), ("auth.jwks_url", &auth.jwks_url)];
    for (field, value) in urls.into_iter().take(if auth.issuer.is_some() { 2 } else { 1 }) {
        if let Some(value) = value {
            let checked = if field == "auth.jwks_url" {
                key_set_url(value)
            } else {
                https_url(value)
            };
            if let Err(why) = checked {
                problems.push(Problem::new(field, format!("`{value}` {why}")));
            }
        }
    }
    let (min, max) = MAX_TOKEN_LIFETIME_RANGE;
    if !(min..=max).contains(&auth.max_token_lifetime_seconds) {
        problems.push(Problem::new(
            "auth.max_token_lifetime_seconds",
            format!(
                "{} is out of range: {min} to {max} seconds (30 days)",
                auth.max_token_lifetime_seconds
            ),
        ));
    }
    for (field, claim) in [
        ("auth.user_claim", &auth.user_claim),
        ("auth.entities_claim", &auth.entities_claim),
    ] {
        if claim.trim().is_empty() {
            problems.push(Problem::new(field, "must name a claim of the token"));
        }
    }
}

/// Keys are fetched from these: anything but https would let the network forge tokens.
fn https_url(value: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(value).map_err(|_| "is not a URL")?;
    if url.scheme() != "https" {
        return Err("must be an https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    Ok(())
}

/// Where the keys are fetched: https, or plain http to this machine (a local OpenID provider for
/// `wsstack dev` and its tests; nothing on the network can forge what a loopback address serves,
/// and a function on AWS cannot reach one, so such a stack only works locally).
fn key_set_url(value: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(value).map_err(|_| "is not a URL")?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() == "http" && loopback {
        return Ok(());
    }
    https_url(value).map_err(|why| match why {
        "must be an https URL" => "must be an https URL (plain http only to 127.0.0.1, localhost or [::1])",
        other => other,
    })
}

/// The shape SNS accepts for an email endpoint: one `@`, a local part, a dotted domain, no spaces.
pub(super) fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}
