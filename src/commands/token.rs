//! `wsstack token`: a connection token signed with the stack's secret (its AWSCURRENT version, read
//! from Secrets Manager, on AWS or in the emulator of a running `wsstack dev`), printed alone on
//! stdout. It says what the connection may subscribe to (`--entities` or `--all-entities`: a token
//! without the claim may subscribe to nothing) and lives no longer than the stack allows. The
//! secret itself is never printed, logged or put in an error message.

use std::time::Duration;

use anyhow::{anyhow, Result};
use wsstack_handlers::auth::{mint_hs256_with, ClaimNames};

use super::Invocation;
use crate::cli::TokenArgs;
use crate::render::{bad_input, Failure};
use crate::resources::errors::found;
use crate::stack::{Auth, Trust};

pub async fn run(context: &Invocation, args: &TokenArgs) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let auth = secret_auth(context, "`wsstack token`")?;
    let max_seconds = u64::from(auth.max_token_lifetime_seconds);
    let ttl = match args.ttl.as_deref() {
        Some(text) => duration_of(text).map_err(bad_input)?,
        None => Duration::from_secs(DEFAULT_TTL_SECONDS.min(max_seconds)),
    };
    if ttl.as_secs() > max_seconds {
        return Err(bad_input(anyhow!(
            "--ttl {} is longer than the stack's maximum token lifetime ({max_seconds} s, `auth.max_token_lifetime_seconds` in {}): the authorizer would refuse the token",
            args.ttl.as_deref().unwrap_or_default(),
            context.cli.file.display()
        )));
    }
    let entities = match (args.entities.as_deref(), args.all_entities) {
        (Some(list), _) => entity_patterns(list).map_err(bad_input)?,
        (None, true) => vec!["*".to_string()],
        (None, false) => {
            return Err(bad_input(anyhow!(
                "say what the connection may subscribe to: --entities with comma-separated globs (e.g. `order-*,user-42`), or --all-entities (a token without either may subscribe to no entity)"
            )))
        }
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&context.config);
    let token = mint(
        &secrets,
        stack,
        &context.names.secret(),
        auth,
        &args.user_id,
        &entities,
        ttl,
    )
    .await?;
    println!("{token}");
    Ok(0)
}

/// A token for `user_id` that may subscribe to `entities` (globs) for `ttl`, signed with the
/// AWSCURRENT key of secret `secret_name`; the caller checked `ttl` against the stack's maximum.
/// Also `wsstack dev`'s console mints through here.
pub(crate) async fn mint(
    secrets: &aws_sdk_secretsmanager::Client,
    stack: &crate::stack::Stack,
    secret_name: &str,
    auth: &Auth,
    user_id: &str,
    entities: &[String],
    ttl: Duration,
) -> Result<String, Failure> {
    let name = secret_name;
    let answer = found(secrets.get_secret_value().secret_id(name).send().await, || {
        format!("reading secret {name}")
    })?
    .ok_or_else(|| {
        anyhow!(
            "stack {} has no secret {name} yet: run `wsstack up` (or `wsstack dev`)",
            stack.name
        )
    })?;
    let secret = answer
        .secret_string()
        .ok_or_else(|| anyhow!("secret {name} holds no text key"))?;
    let claims = ClaimNames {
        user: auth.user_claim.clone(),
        entities: auth.entities_claim.clone(),
    };
    mint_hs256_with(secret.as_bytes(), &claims, user_id, Some(entities), ttl)
        .map_err(|e| bad_input(anyhow!("cannot mint a token: {e}")))
}

/// The `auth:` of a stack that signs its own tokens; `command` names who asks, for the refusal.
pub(super) fn secret_auth<'c>(context: &'c Invocation, command: &str) -> Result<&'c Auth, Failure> {
    let stack = &context.file.stack;
    match stack.auth.as_ref() {
        Some(auth) if auth.trust() == Trust::Secret => Ok(auth),
        Some(_) => Err(bad_input(anyhow!(
            "stack {} trusts an OpenID issuer: its tokens and keys are that issuer's, not {command}'s",
            stack.name
        ))),
        None => Err(bad_input(anyhow!(
            "stack {} has no `auth:`: anyone may connect, no token is needed (add `auth: {{secret: generated}}` to {})",
            stack.name,
            context.cli.file.display()
        ))),
    }
}

/// The lifetime of a token when `--ttl` is not given (unless the stack's maximum is shorter).
pub(crate) const DEFAULT_TTL_SECONDS: u64 = 3600;

/// `order-*,user-U` as patterns; an empty one would match nothing anyone meant.
pub(crate) fn entity_patterns(list: &str) -> Result<Vec<String>> {
    let patterns: Vec<String> = list.split(',').map(|p| p.trim().to_string()).collect();
    if patterns.iter().any(String::is_empty) {
        return Err(anyhow!(
            "--entities `{list}` has an empty pattern: give comma-separated globs like `order-*,user-42`"
        ));
    }
    Ok(patterns)
}

/// `90s`, `15m`, `1h`, `7d`: a positive whole number and one unit.
fn duration_of(text: &str) -> Result<Duration> {
    let bad = || anyhow!("--ttl `{text}` is not a duration: a whole number with s, m, h or d (e.g. 1h)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if seconds == 0 {
        return Err(anyhow!("--ttl must be longer than zero"));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_patterns() {
        assert_eq!(duration_of("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration_of("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(duration_of("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "1", "1.5h", "-1h", "1w", "0m", "99999999999999999999d"] {
            assert!(duration_of(bad).is_err(), "{bad}");
        }
        assert_eq!(entity_patterns("order-*, user-7").unwrap(), vec!["order-*", "user-7"]);
        assert!(entity_patterns("order-*,").is_err());
    }
}
