//! `wsstack asyncapi`: write the stack's AsyncAPI 3.0 document (see `crate::asyncapi`).
//!
//! Offline by default: the server address is AWS's URL template with the API id as a variable.
//! `--deployed` looks the address up (the running `wsstack dev`'s gateway, else the deployed API).

use std::path::Path;

use anyhow::{anyhow, Context as _};

use super::Invocation;
use crate::asyncapi::{self, Address};
use crate::aws::{self, Aws, Target};
use crate::cli::{AsyncapiArgs, Cli};
use crate::discovery;
use crate::render::{bad_input, Failure};
use crate::stack;

/// The document from the stack file alone; no AWS call.
pub async fn offline(cli: &Cli, args: &AsyncapiArgs) -> Result<u8, Failure> {
    let file = stack::load(&cli.file).map_err(bad_input)?;
    let target = Target {
        profile: cli.profile.clone(),
        region: cli.region.clone(),
        ..Target::default()
    };
    let region = aws::resolve_region(&target, file.stack.region.as_deref()).await;
    let template = Address::Template {
        dns_suffix: "amazonaws.com".into(),
    };
    write(args, &asyncapi::document(&file.stack, region.as_deref(), &template))
}

/// The document with the address clients really connect to.
pub async fn deployed(context: &Invocation, args: &AsyncapiArgs) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let region = context.names.region.clone();
    let address = match crate::dev::session::live(&context.session_file).map_err(bad_input)? {
        Some(session) => address_of(&session.gateway)?,
        None => {
            let aws = Aws::connect(context.config.clone(), context.names.clone()).await?;
            let resolved = discovery::discover(&aws, &stack.name, &stack.stage).await?.resolved();
            let url = resolved.public_url(&aws, stack).ok_or_else(|| {
                bad_input(anyhow!(
                    "stack {} has no WebSocket API yet: run `wsstack up`, or leave out --deployed",
                    stack.name
                ))
            })?;
            address_of(&url)?
        }
    };
    write(args, &asyncapi::document(stack, Some(&region), &address))
}

/// `ws://127.0.0.1:8080/dev` (dev's gateway) or `wss://{api}.execute-api.../{stage}` as host and path.
fn address_of(url: &str) -> anyhow::Result<Address> {
    let (tls, rest) = match url.split_once("://") {
        Some(("wss", rest)) => (true, rest),
        Some(("ws", rest)) => (false, rest),
        _ => return Err(anyhow!("{url} is not a ws:// or wss:// URL")),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(Address::Host {
        host: host.to_string(),
        pathname: format!("/{path}"),
        tls,
    })
}

fn write(args: &AsyncapiArgs, document: &serde_json::Value) -> Result<u8, Failure> {
    let text = serde_json::to_string_pretty(document).context("serializing the AsyncAPI document")?;
    match &args.out {
        Some(path) if path != Path::new("-") => {
            std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?
        }
        _ => println!("{text}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_gateway_url_becomes_host_and_path() {
        assert_eq!(
            address_of("ws://127.0.0.1:8080/dev").unwrap(),
            Address::Host {
                host: "127.0.0.1:8080".into(),
                pathname: "/dev".into(),
                tls: false
            }
        );
        assert!(address_of("http://x/").is_err());
    }
}
