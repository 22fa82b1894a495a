//! `wsstack connect`: find the WebSocket URL (given, the running `wsstack dev`'s, or the stack's
//! API) and check the flags, then hand over to the client in `crate::ws_client`.
//!
//! Flags are checked before anything connects: a bad one is exit 2, never a panic.
//! The token can stay out of the process list (`ps` shows every user a command line): from
//! WSSTACK_TOKEN, or with `--token -` from the first line of standard input.

use std::time::Duration;

use anyhow::{anyhow, Result};

use super::Invocation;
use crate::aws::Aws;
use crate::cli::{Cli, ConnectArgs};
use crate::discovery;
use crate::render::{bad_input, Failure};

/// Without a URL: the gateway of a running `wsstack dev`, else the stack's API on AWS.
pub async fn run(context: &Invocation, args: &ConnectArgs) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let url = match crate::dev::session::live(&context.session_file).map_err(bad_input)? {
        Some(session) => session.gateway,
        None => {
            let aws = Aws::connect(context.config.clone(), context.names.clone()).await?;
            let resolved = discovery::discover(&aws, &stack.name, &stack.stage).await?.resolved();
            resolved.public_url(&aws, stack).ok_or_else(|| {
                bad_input(anyhow!(
                    "stack {} has no WebSocket API yet: run `wsstack up` (or `wsstack dev`)",
                    stack.name
                ))
            })?
        }
    };
    open(&context.cli, args, url).await
}

/// Connect to `url`; needs no stack file.
pub async fn open(cli: &Cli, args: &ConnectArgs, url: String) -> Result<u8, Failure> {
    let timeout = args.timeout.map(timeout_of).transpose().map_err(bad_input)?;
    // An explicit flag wins over the variable, so that an exported WSSTACK_TOKEN does not clash
    // with --protocol.
    let from_environment = || std::env::var("WSSTACK_TOKEN").ok().filter(|t| !t.trim().is_empty());
    let given = match (&args.token, &args.protocol) {
        (Some(token), _) => Some(token.clone()),
        (None, None) => from_environment(),
        (None, Some(_)) => None,
    };
    let token = match given.as_deref() {
        Some("-") => Some(
            tokio::task::spawn_blocking(token_from_stdin)
                .await
                .map_err(|e| anyhow!("reading the token: {e}"))?
                .map_err(bad_input)?,
        ),
        other => other.map(String::from),
    };
    Ok(crate::ws_client::run(crate::ws_client::ConnectOptions {
        url,
        subscribe: args.subscribe.clone(),
        // The article's convention, which the authorizer reads: the token as a second protocol,
        // and `websocket` the one the server echoes.
        protocol: match token {
            Some(token) => Some(format!("websocket, {token}")),
            None => args.protocol.clone(),
        },
        count: args.count,
        timeout,
        quiet: cli.quiet,
    })
    .await?)
}

/// Tokens are a few hundred bytes; a first line longer than this is no token.
const MAX_TOKEN: usize = 64 * 1024;

/// `--token -`: the first line of standard input (without its line end and surrounding blanks).
/// Read one byte at a time, straight from the descriptor, so that nothing after the line is taken
/// from the frames the client then reads from standard input.
fn token_from_stdin() -> Result<String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdin.read(&mut byte)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
        if line.len() > MAX_TOKEN {
            return Err(anyhow!(
                "--token -: the first line of standard input is longer than a token"
            ));
        }
    }
    let token = String::from_utf8(line).map_err(|_| anyhow!("--token -: the token is not UTF-8"))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(anyhow!("--token -: standard input has no token on its first line"));
    }
    Ok(token.to_string())
}

/// `--timeout` as a duration: positive, finite, and small enough for a `Duration`.
fn timeout_of(seconds: f64) -> Result<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(anyhow!("--timeout must be a positive number of seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| anyhow!("--timeout {seconds} is too long for a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_that_are_not_a_duration_are_refused() {
        assert_eq!(timeout_of(1.5).unwrap(), Duration::from_millis(1500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = timeout_of(bad).unwrap_err().to_string();
            assert!(error.contains("positive number of seconds"), "{bad}: {error}");
        }
        let error = timeout_of(1e20).unwrap_err().to_string();
        assert!(error.contains("too long"), "{error}");
    }
}
