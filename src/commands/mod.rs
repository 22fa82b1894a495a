//! The commands, one module each, and the `Invocation` they share: the parsed command line, the
//! stack file, where AWS is (a real account, an emulator, or the one of a running `wsstack dev`).
//!
//! Resolving the context makes no AWS call; a command that needs none (`connect URL`) skips it.

pub mod asyncapi;
pub mod completions;
pub mod connect;
pub mod cost;
pub mod dev;
pub mod down;
pub mod init;
pub mod live_numbers;
pub mod logs;
pub mod outputs;
pub mod plan;
pub mod rotate_secret;
pub mod schema;
pub mod send_event;
pub mod status;
pub mod token;
pub mod up;

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::aws::{self, Aws, Target};
use crate::cli::{Cli, Command, Format};
use crate::dev::emulator::Emulator;
use crate::engine::{self, Report, Verb};
use crate::graph::Values;
use crate::names::Names;
use crate::progress::Progress;
use crate::render::{self, bad_input, Failure};
use crate::stack::{self, StackFile};
use std::sync::Arc;

use crate::bundle::{self, Bundle};
use crate::discovery::{self, Discovered};
use crate::plan as resource_plan;
use crate::resources::Resource;

/// What every command that works on the stack file needs, resolved once.
pub struct Invocation {
    pub cli: Cli,
    pub file: StackFile,
    pub config: aws_config::SdkConfig,
    pub names: Names,
    /// The endpoint every AWS call goes to when not AWS itself (empty for AWS).
    pub endpoint: String,
    /// Where a running `wsstack dev` of this stack leaves its address.
    pub session_file: PathBuf,
    /// `dev`'s hold on the session note, taken before anything starts; `dev` hands it to the
    /// server, which publishes its address in it.
    pub dev_session: std::sync::Mutex<Option<crate::dev::session::Claim>>,
    /// Event sources a running `wsstack dev` of this stack paused on purpose (its own poller
    /// replaces the emulator's): no drift for `status`, nothing for `up` to enable.
    pub dev_paused: Vec<String>,
    /// The emulator `dev` started; it stops when the context is dropped.
    _emulator: Option<Emulator>,
}

impl Invocation {
    /// Load the stack file and decide where AWS is: the flags, AWS_ENDPOINT_URL, a running
    /// `wsstack dev` of this stack, or (for `dev`) a new emulator.
    pub async fn resolve(cli: Cli) -> Result<Invocation, Failure> {
        let file = stack::load(&cli.file).map_err(bad_input)?;
        let mut target = Target {
            profile: cli.profile.clone(),
            region: cli.region.clone(),
            endpoint_url: cli.endpoint_url.clone(),
            local_credentials: false,
        };
        let endpoint_in_env = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty());
        let session_file = crate::dev::session::path(&cli.file, &file.stack.name, &file.stack.stage);
        // One `wsstack dev` per stack file, whatever its endpoint: the second is refused here.
        let (dev_session, running_dev) = match cli.command {
            Command::Dev(_) => (
                Some(crate::dev::session::claim(&session_file).map_err(bad_input)?),
                None,
            ),
            _ => (None, crate::dev::session::live(&session_file).map_err(bad_input)?),
        };
        let dev_paused = running_dev
            .as_ref()
            .map(|session| session.paused_event_sources.clone())
            .unwrap_or_default();
        let mut emulator = None;
        if target.endpoint_url.is_none() && endpoint_in_env.is_none() {
            if matches!(cli.command, Command::Dev(_)) {
                let stack_dir = cli
                    .file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let started = crate::dev::emulator::start(stack_dir).await.map_err(bad_input)?;
                target.endpoint_url = Some(started.endpoint.clone());
                target.local_credentials = true;
                emulator = Some(started);
            } else if let Some(session) = running_dev {
                // A `wsstack dev` runs this stack: talk to its emulator.
                if !cli.quiet && cli.output == Format::Text {
                    eprintln!(
                        "(using the local stack of `wsstack dev`, pid {}, at {})",
                        session.pid, session.endpoint
                    );
                }
                target.endpoint_url = Some(session.endpoint);
                target.region = target.region.or(Some(session.region));
                target.local_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_none();
            }
        }
        let local = target.endpoint_url.is_some() || endpoint_in_env.is_some();
        let region = match aws::resolve_region(&target, file.stack.region.as_deref()).await {
            Some(region) => region,
            // An emulator does not care which region; AWS does.
            None if local => "us-east-1".to_string(),
            None => {
                return Err(bad_input(anyhow!(
                    "no AWS region: set `region:` in {}, pass --region, or set AWS_REGION",
                    cli.file.display()
                )))
            }
        };
        if !stack::is_region(&region) {
            return Err(bad_input(anyhow!("`{region}` is not an AWS region")));
        }
        file.check_region(&region).map_err(bad_input)?;
        let config = aws::sdk_config(&target, &region).await;
        let names = Names::new(&file.stack, &region);
        let endpoint = target.endpoint_url.clone().or(endpoint_in_env).unwrap_or_default();
        Ok(Invocation {
            cli,
            file,
            config,
            names,
            endpoint,
            session_file,
            dev_session: std::sync::Mutex::new(dev_session),
            dev_paused,
            _emulator: emulator,
        })
    }

    /// Text output that is more than the summary and errors.
    pub fn chatty(&self) -> bool {
        self.cli.output == Format::Text && !self.cli.quiet
    }

    /// The stack's resources, as the plan builds them from what discovery `found`.
    pub fn plan(&self, aws: &Aws, bundle: Option<&Bundle>, found: &Discovered) -> Vec<Arc<dyn Resource>> {
        let inputs = resource_plan::Inputs {
            bundle,
            found,
            dev_paused: &self.dev_paused,
        };
        resource_plan::resources(&self.file.stack, aws, inputs)
    }
}

/// Read every resource (no writes): what `status` and `plan` show.
async fn inspect_all(context: &Invocation) -> Result<(Aws, Vec<Report>, Values), Failure> {
    let stack = &context.file.stack;
    // Without a handlers package the code is simply not compared.
    let bundle = bundle::load(context.cli.handlers_zip.as_deref(), stack.handlers.architecture).ok();
    let (aws, found) =
        discovery::connect_and_discover(context.config.clone(), context.names.clone(), &stack.name, &stack.stage)
            .await?;
    let resources = context.plan(&aws, bundle.as_ref(), &found);
    let mut resolved = found.resolved();
    let reports = engine::run(&resources, &aws, &mut resolved, Verb::Inspect, &Progress::new(false)).await?;
    if engine::any_failed(&reports) {
        return Err(render::resources_failed(&reports, "could not read every resource"));
    }
    Ok((aws, reports, resolved))
}
