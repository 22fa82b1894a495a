//! `wsstack token`: a connection token signed with the stack's secret (read from Secrets Manager,
//! on AWS or in the emulator of a running `wsstack dev`), printed alone on stdout. The secret
//! itself is never printed, logged or put in an error message.

use std::time::Duration;

use anyhow::{anyhow, Result};
use wsstack_handlers::auth::{mint_hs256_with, ClaimNames};

use super::Invocation;
use crate::cli::TokenArgs;
use crate::render::{bad_input, Failure};
use crate::resources::errors::found;
use crate::stack::Trust;

pub async fn run(context: &Invocation, args: &TokenArgs) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let auth = match stack.auth.as_ref() {
        Some(auth) if auth.trust() == Trust::Secret => auth,
        Some(_) => {
            return Err(bad_input(anyhow!(
                "stack {} trusts an OpenID issuer: its tokens come from that issuer, not from `wsstack token`",
                stack.name
            )))
        }
        None => {
            return Err(bad_input(anyhow!(
            "stack {} has no `auth:`: anyone may connect, no token is needed (add `auth: {{secret: generated}}` to {})",
            stack.name,
            context.cli.file.display()
        )))
        }
    };
    let ttl = duration_of(&args.ttl).map_err(bad_input)?;
    let entities = args
        .entities
        .as_deref()
        .map(entity_patterns)
        .transpose()
        .map_err(bad_input)?;
    let name = context.names.secret();
    let secrets = aws_sdk_secretsmanager::Client::new(&context.config);
    let answer = found(secrets.get_secret_value().secret_id(&name).send().await, || {
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
    let token = mint_hs256_with(secret.as_bytes(), &claims, &args.user_id, entities.as_deref(), ttl)
        .map_err(|e| bad_input(anyhow!("cannot mint a token: {e}")))?;
    println!("{token}");
    Ok(0)
}

/// `order-*,user-U` as patterns; an empty one would match nothing anyone meant.
fn entity_patterns(list: &str) -> Result<Vec<String>> {
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
