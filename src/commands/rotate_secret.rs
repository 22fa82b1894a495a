//! `wsstack rotate-secret`: a new random key for the stack's secret with PutSecretValue, which
//! moves AWSCURRENT to the new version and AWSPREVIOUS to the old one. The authorizer accepts the
//! previous key for `auth.max_token_lifetime_seconds` after the rotation (from the new version's
//! CreatedDate), so tokens already handed out keep working and a leaked key stops after that.
//! Neither key is ever printed.

use anyhow::anyhow;
use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use serde_json::json;

use super::Invocation;
use crate::aws::sdk_error;
use crate::cli::Format;
use crate::render::{self, bad_input, Failure};
use crate::resources::errors::found;
use crate::resources::secret::new_key;

pub async fn run(context: &Invocation, force: bool) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let auth = super::token::secret_auth(context, "`wsstack rotate-secret`")?;
    let max_seconds = i64::from(auth.max_token_lifetime_seconds);
    let name = context.names.secret();
    let secrets = aws_sdk_secretsmanager::Client::new(&context.config);
    let read = |stage: &'static str| {
        let call = secrets.get_secret_value().secret_id(&name).version_stage(stage);
        let name = name.clone();
        async move { found(call.send().await, || format!("reading secret {name} ({stage})")) }
    };
    let current = read("AWSCURRENT").await?.ok_or_else(|| {
        bad_input(anyhow!(
            "stack {} has no secret {name} yet: run `wsstack up` (or `wsstack dev`)",
            stack.name
        ))
    })?;
    let now = DateTime::from(std::time::SystemTime::now()).secs();
    let current_since = current.created_date().map(DateTime::secs);
    // A second rotation inside the first one's window retires the key before the current one at
    // once: whoever holds a token signed with it is logged out. Only on purpose.
    if let Some(since) = current_since.filter(|since| now < since + max_seconds) {
        if !force && read("AWSPREVIOUS").await?.is_some() {
            return Err(bad_input(anyhow!(
                "secret {name} was rotated {} s ago: the key before it stays valid until {} (auth.max_token_lifetime_seconds = {max_seconds}); rotating again now would refuse tokens signed with that key at once. Wait, or pass --force (e.g. when that key leaked)",
                now - since,
                when(since + max_seconds)
            )));
        }
    }
    let key = new_key(&secrets, &name).await?;
    let put = secrets
        .put_secret_value()
        .secret_id(&name)
        .secret_string(key)
        .send()
        .await;
    let version = put
        .map_err(|e| sdk_error(format!("putting a new version of secret {name} (PutSecretValue)"), e))?
        .version_id
        .unwrap_or_default();
    // Read back: the window the authorizer will use starts at the new version's CreatedDate.
    let rotated = read("AWSCURRENT")
        .await?
        .ok_or_else(|| anyhow!("secret {name} disappeared during the rotation"))?;
    if rotated.version_id() != Some(version.as_str()) {
        return Err(anyhow!(
            "secret {name}: AWSCURRENT is not the version just put ({version}): was it rotated concurrently?"
        )
        .into());
    }
    let until = rotated.created_date().map_or(now, DateTime::secs) + max_seconds;
    match context.cli.output {
        Format::Json => render::print_json(&json!({
            "secret": name,
            "version_id": version,
            "previous_key_valid_until": when(until),
        })),
        Format::Text => println!(
            "rotated secret {name}: `wsstack token` signs with the new key; tokens signed with the previous key are accepted until {} (auth.max_token_lifetime_seconds = {max_seconds})",
            when(until)
        ),
    }
    Ok(0)
}

/// An instant as RFC 3339 in UTC.
fn when(epoch_seconds: i64) -> String {
    DateTime::from_secs(epoch_seconds)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{epoch_seconds} (epoch seconds)"))
}
