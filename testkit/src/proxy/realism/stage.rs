//! API Gateway stages in realism mode: AutoDeploy deploys after CreateStage / UpdateStage, and
//! after every change to the API's routes, integrations or authorizers, once the call has
//! returned. Until a deployment lands GetStage(s) shows the one before it (a new stage: none, and
//! no LastDeploymentStatusMessage); afterwards the new deployment id and API Gateway's success
//! message, which the emulator never shows. GetDeployments, which the emulator lacks, lists them
//! likewise, the latest `PENDING` until it lands.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::SystemTime;

use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Stages {
    /// (API id, stage name) of each AutoDeploy stage -> its deployments.
    written: HashMap<(String, String), Deployments>,
}

/// The automatic deployments of one stage, numbered from 1 per API and stage name.
struct Deployments {
    /// Since the latest deployment started.
    window: Window,
    /// The latest deployment's number.
    latest: u64,
    /// The first number of the stage as it is now (a stage deleted and created again starts
    /// after the deployments of the one before).
    first: u64,
    /// When each deployment started, from `first` on.
    created: Vec<SystemTime>,
}

/// GetDeployments: the emulator has none, AWS lists the stage's automatic deployments (the
/// latest `PENDING` until it lands). Answered here so that a caller can tell AWS from an endpoint
/// without deployments.
pub(super) fn before(world: &World, exchange: &Exchange) -> Option<Verdict> {
    if !world.is_on(Behaviour::LateDeployment) {
        return None;
    }
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ("GET", ["v2", "apis", api, "deployments"]) = (exchange.method, parts.as_slice()) else {
        return None;
    };
    let items: Vec<Value> = world
        .stages
        .written
        .iter()
        .filter(|((a, _), _)| a == api)
        .flat_map(|((_, stage), deployments)| {
            let landed = !world.within(Behaviour::LateDeployment, Some(&deployments.window));
            (deployments.first..=deployments.latest)
                .zip(&deployments.created)
                .map(move |(generation, created)| {
                    let pending = generation == deployments.latest && !landed;
                    json!({
                        "autoDeployed": true,
                        "createdDate": aws_smithy_types::DateTime::from(*created)
                            .fmt(aws_smithy_types::date_time::Format::DateTime)
                            .unwrap_or_default(),
                        "deploymentId": deployment_id(api, stage, generation),
                        "deploymentStatus": if pending { "PENDING" } else { "DEPLOYED" },
                    })
                })
        })
        .collect();
    Some(Verdict::Answer {
        behaviour: Behaviour::LateDeployment,
        body: json!({ "items": items }),
    })
}

pub(super) fn after(world: &mut World, exchange: &Exchange, body: &mut Value) -> Vec<Behaviour> {
    if !world.is_on(Behaviour::LateDeployment) {
        return Vec::new();
    }
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (exchange.method, parts.as_slice()) {
        ("POST", ["v2", "apis", api, "stages"]) => {
            if let (Some(stage), Some(true)) = (body["stageName"].as_str(), body["autoDeploy"].as_bool()) {
                deploy(world, api, stage, true);
            }
            Vec::new()
        }
        ("PATCH", ["v2", "apis", api, "stages", stage]) => {
            deploy(world, api, stage, false);
            Vec::new()
        }
        ("DELETE", ["v2", "apis", api, "stages", stage]) => {
            if let Some(deployments) = world.stages.written.get_mut(&(api.to_string(), stage.to_string())) {
                // Numbers go on: a stage created again gets new deployment ids.
                deployments.first = deployments.latest + 1;
                deployments.created.clear();
            }
            Vec::new()
        }
        // A change to what the stage serves: every AutoDeploy stage of the API deploys it.
        ("POST" | "PATCH" | "PUT" | "DELETE", ["v2", "apis", api, kind, ..])
            if matches!(*kind, "routes" | "integrations" | "authorizers" | "models") =>
        {
            let stages: Vec<String> = world
                .stages
                .written
                .iter()
                .filter(|((a, _), deployments)| a == api && !deployments.created.is_empty())
                .map(|((_, stage), _)| stage.clone())
                .collect();
            for stage in stages {
                deploy(world, api, &stage, false);
            }
            Vec::new()
        }
        ("GET", ["v2", "apis", api, "stages", _]) => show_deployment(world, api, body).into_iter().collect(),
        ("GET", ["v2", "apis", api, "stages"]) => {
            let mut rewritten = Vec::new();
            if let Some(items) = body["items"].as_array_mut() {
                for stage in items {
                    rewritten.extend(show_deployment(world, api, stage));
                }
            }
            rewritten
        }
        _ => Vec::new(),
    }
}

/// A deployment of `stage` starts now (`created`: the stage is new).
fn deploy(world: &mut World, api: &str, stage: &str, created: bool) {
    let window = world.open_window();
    let at = SystemTime::now() + world.skipped;
    let key = (api.to_string(), stage.to_string());
    match world.stages.written.get_mut(&key) {
        Some(deployments) => {
            if created {
                deployments.first = deployments.latest + 1;
                deployments.created.clear();
            }
            deployments.window = window;
            deployments.latest += 1;
            deployments.created.push(at);
        }
        None => {
            world.stages.written.insert(
                key,
                Deployments {
                    window,
                    latest: 1,
                    first: 1,
                    created: vec![at],
                },
            );
        }
    }
}

fn show_deployment(world: &World, api: &str, stage: &mut Value) -> Option<Behaviour> {
    if stage["autoDeploy"].as_bool() != Some(true) {
        return None;
    }
    let name = stage["stageName"].as_str()?.to_string();
    let deployments = world.stages.written.get(&(api.to_string(), name.clone()));
    let landing = world.within(Behaviour::LateDeployment, deployments.map(|d| &d.window));
    // The deployment the stage serves: the latest once it landed, else the one before, if any;
    // a stage made before realism mode saw it serves one of its own (number 0).
    let serving = match deployments {
        None => Some(0),
        Some(d) => {
            let serving = if landing { d.latest - 1 } else { d.latest };
            (serving >= d.first).then_some(serving)
        }
    };
    let object = stage.as_object_mut()?;
    match serving {
        Some(generation) => {
            let id = deployment_id(api, &name, generation);
            object.insert(
                "lastDeploymentStatusMessage".into(),
                json!(format!("Successfully deployed stage with deployment ID '{id}'")),
            );
            object.insert("deploymentId".into(), json!(id));
        }
        None => {
            object.remove("deploymentId");
            object.remove("lastDeploymentStatusMessage");
        }
    }
    Some(Behaviour::LateDeployment)
}

/// A deployment id shaped like API Gateway's (6 lowercase letters and digits), one per write.
fn deployment_id(api: &str, stage: &str, generation: u64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{api}/{stage}/{generation}").bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|i| DIGITS[((hash >> (i * 6)) % 36) as usize] as char)
        .collect()
}
