//! `wsstack dev`: `up` against the local emulator, then serve the stack on this machine until
//! Ctrl-C, and optionally `down` on the way out.
//!
//! The emulator itself is started while resolving the context; this module only runs the stack.

use std::time::Duration;

use super::Invocation;
use crate::cli::DevArgs;
use crate::render::Failure;

pub async fn run(context: &Invocation, args: &DevArgs) -> Result<u8, Failure> {
    let (aws, bundle, resolved) = super::up::run(context).await?;
    let options = crate::dev::DevOptions {
        port: args.port,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connection: Duration::from_secs(args.max_connection),
        max_instances: args.max_instances,
        pollers: 2,
        max_connections: args.max_connections as usize,
        quiet_handlers: args.quiet_handlers,
        endpoint: context.endpoint.clone(),
        session: context.dev_session.lock().expect("not poisoned").take(),
    };
    crate::dev::serve(&context.file.stack, &aws, &resolved, &bundle, options).await?;
    if args.down_on_exit {
        return super::down::run(context, true).await;
    }
    Ok(0)
}

/// `wsstack dev --install-emulator`: needs no stack file, so an installed wsstack can set itself up.
pub fn install_emulator() -> Result<u8, Failure> {
    let dir = crate::dev::emulator::install()?;
    println!(
        "moto {} is installed in {}: `wsstack dev` finds it from now on",
        crate::dev::emulator::MOTO_VERSION,
        dir.display()
    );
    Ok(0)
}
