//! Event source mappings in realism mode: DeleteEventSourceMapping is asynchronous on AWS. The
//! emulator deletes at once, so the proxy keeps the last JSON it saw of each mapping and, for a
//! while after the delete, splices it back into reads as `Deleting` and refuses a new mapping of
//! the same function and queue, naming the old UUID.

use serde_json::{json, Value};
use std::collections::HashMap;

use super::lambda::function_name;
use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Mappings {
    /// UUID -> the last JSON seen of a live mapping.
    seen: HashMap<String, Value>,
    /// UUID -> the mapping as it was deleted (State `Deleting`), and since when.
    deleted: HashMap<String, (Value, Window)>,
}

/// The mappings still `Deleting` now that match `wanted`, each counted as shown.
fn deleting<'w>(
    world: &'w World,
    wanted: impl Fn(&str, &Value) -> bool + 'w,
) -> impl Iterator<Item = (&'w String, &'w Value)> {
    world
        .mappings
        .deleted
        .iter()
        .filter(move |(uuid, (mapping, window))| {
            wanted(uuid, mapping) && world.within(Behaviour::MappingDeletion, Some(window))
        })
        .map(|(uuid, (mapping, _))| (uuid, mapping))
}

fn same_function(given: &str, mapping: &Value) -> bool {
    mapping["FunctionArn"]
        .as_str()
        .is_some_and(|arn| function_name(arn) == function_name(given))
}

pub(super) fn before_create(world: &World, exchange: &Exchange) -> Option<Verdict> {
    let body = exchange.json_body();
    let function = body["FunctionName"].as_str()?;
    let source = body["EventSourceArn"].as_str()?;
    let (uuid, _) = deleting(world, |_, m| {
        m["EventSourceArn"].as_str() == Some(source) && same_function(function, m)
    })
    .next()?;
    Some(Verdict::Error {
        behaviour: Behaviour::MappingDeletion,
        status: 409,
        code: "ResourceConflictException",
        message: format!(
            "The event source arn (\" {source} \") and function (\" {function} \") provided mapping already exists. Please update or delete the existing mapping with UUID {uuid}"
        ),
    })
}

/// GetEventSourceMapping of a mapping being deleted: AWS still shows it.
pub(super) fn before_get(world: &World, uuid: &str) -> Option<Verdict> {
    let (_, mapping) = deleting(world, |u, _| u == uuid).next()?;
    Some(Verdict::Answer {
        behaviour: Behaviour::MappingDeletion,
        body: mapping.clone(),
    })
}

/// Update or delete of a mapping in transition: ResourceInUseException, as Lambda documents for
/// a mapping that is not in a stable state.
pub(super) fn before_change(world: &World, uuid: &str) -> Option<Verdict> {
    deleting(world, |u, _| u == uuid).next()?;
    Some(Verdict::Error {
        behaviour: Behaviour::MappingDeletion,
        status: 400,
        code: "ResourceInUseException",
        message: format!(
            "The operation cannot be performed at this time. The event source mapping {uuid} is currently in the following state: Deleting"
        ),
    })
}

pub(super) fn remember(world: &mut World, mapping: &Value) {
    if let Some(uuid) = mapping["UUID"].as_str() {
        world.mappings.seen.insert(uuid.to_string(), mapping.clone());
    }
}

pub(super) fn after_delete(world: &mut World, uuid: &str, answer: &Value) {
    let mut mapping = world.mappings.seen.remove(uuid).unwrap_or_else(|| answer.clone());
    if !mapping.is_object() {
        return;
    }
    mapping["State"] = json!("Deleting");
    mapping["StateTransitionReason"] = json!("USER_INITIATED");
    let window = world.open_window();
    world.mappings.deleted.insert(uuid.to_string(), (mapping, window));
}

/// ListEventSourceMappings: remember what is live, and list the ones being deleted as AWS does.
pub(super) fn after_list(world: &mut World, exchange: &Exchange, body: &mut Value) -> Option<Behaviour> {
    for mapping in body["EventSourceMappings"].as_array().cloned().unwrap_or_default() {
        remember(world, &mapping);
    }
    let function = exchange.query_param("FunctionName");
    let source = exchange.query_param("EventSourceArn");
    let live = body["EventSourceMappings"].clone();
    let listed: Vec<Value> = deleting(world, |uuid, mapping| {
        function.as_deref().is_none_or(|f| same_function(f, mapping))
            && source
                .as_deref()
                .is_none_or(|s| mapping["EventSourceArn"].as_str() == Some(s))
            && !live
                .as_array()
                .is_some_and(|all| all.iter().any(|m| m["UUID"].as_str() == Some(uuid)))
    })
    .map(|(_, mapping)| mapping.clone())
    .collect();
    let expired: Vec<String> = world
        .mappings
        .deleted
        .iter()
        .filter(|(_, (_, window))| !world.is_open(Behaviour::MappingDeletion, Some(window)))
        .map(|(uuid, _)| uuid.clone())
        .collect();
    for uuid in expired {
        world.mappings.deleted.remove(&uuid);
    }
    if listed.is_empty() {
        return None;
    }
    body["EventSourceMappings"].as_array_mut()?.extend(listed);
    Some(Behaviour::MappingDeletion)
}
