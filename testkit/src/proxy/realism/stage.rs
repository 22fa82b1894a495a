//! API Gateway stages in realism mode: AutoDeploy deploys after CreateStage / UpdateStage has
//! returned. Until then GetStage(s) shows no DeploymentId and no LastDeploymentStatusMessage;
//! afterwards a deployment id and API Gateway's success message, which the emulator never shows.
//! GetDeployments, which the emulator lacks, lists them likewise.

use serde_json::{json, Value};
use std::collections::HashMap;

use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Stages {
    /// (API id, stage name) -> since the last CreateStage / UpdateStage, and how many there were.
    written: HashMap<(String, String), (Window, u64)>,
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
        .flat_map(|((_, stage), (at, count))| {
            let landed = !world.within(Behaviour::LateDeployment, Some(at));
            (1..=*count).map(move |generation| {
                let pending = generation == *count && !landed;
                json!({
                    "autoDeployed": true,
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
            if let Some(stage) = body["stageName"].as_str() {
                written(world, api, stage);
            }
            Vec::new()
        }
        ("PATCH", ["v2", "apis", api, "stages", stage]) => {
            written(world, api, stage);
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

fn written(world: &mut World, api: &str, stage: &str) {
    let window = world.open_window();
    let count = world
        .stages
        .written
        .get(&(api.to_string(), stage.to_string()))
        .map_or(0, |(_, count)| *count);
    world
        .stages
        .written
        .insert((api.to_string(), stage.to_string()), (window, count + 1));
}

fn show_deployment(world: &World, api: &str, stage: &mut Value) -> Option<Behaviour> {
    if stage["autoDeploy"].as_bool() != Some(true) {
        return None;
    }
    let name = stage["stageName"].as_str()?.to_string();
    let last = world.stages.written.get(&(api.to_string(), name.clone()));
    let object = stage.as_object_mut()?;
    if world.within(Behaviour::LateDeployment, last.map(|(at, _)| at)) {
        object.remove("deploymentId");
        object.remove("lastDeploymentStatusMessage");
    } else {
        let id = deployment_id(api, &name, last.map(|(_, n)| *n).unwrap_or(0));
        object.insert(
            "lastDeploymentStatusMessage".into(),
            json!(format!("Successfully deployed stage with deployment ID '{id}'")),
        );
        object.insert("deploymentId".into(), json!(id));
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
