//! Lambda in realism mode: a role Lambda cannot use yet, `Pending` and `InProgress` functions
//! (in reads, and as ResourceConflictException on the next update), and GetFunction without tags.
//! Event source mappings are in `mapping.rs`; this file routes their calls there.

use serde_json::{json, Value};

use super::iam::role_name;
use super::mapping;
use super::{Behaviour, Exchange, Verdict, Window, World};

/// What realism mode knows of one function.
#[derive(Default)]
pub(super) struct Function {
    arn: Option<String>,
    role: Option<String>,
    created: Option<Window>,
    updated: Option<Window>,
}

pub(super) enum Route {
    CreateFunction,
    GetFunction(String),
    GetConfiguration(String),
    UpdateCode(String),
    UpdateConfiguration(String),
    DeleteFunction(String),
    CreateMapping,
    ListMappings,
    GetMapping(String),
    UpdateMapping(String),
    DeleteMapping(String),
    Other,
}

pub(super) fn route(exchange: &Exchange) -> Route {
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (exchange.method, parts.as_slice()) {
        ("POST", [_, "functions"]) => Route::CreateFunction,
        ("GET", [_, "functions", name]) => Route::GetFunction(function_name(name)),
        ("DELETE", [_, "functions", name]) => Route::DeleteFunction(function_name(name)),
        ("GET", [_, "functions", name, "configuration"]) => Route::GetConfiguration(function_name(name)),
        ("PUT", [_, "functions", name, "configuration"]) => Route::UpdateConfiguration(function_name(name)),
        ("PUT", [_, "functions", name, "code"]) => Route::UpdateCode(function_name(name)),
        ("POST", [_, "event-source-mappings"]) => Route::CreateMapping,
        ("GET", [_, "event-source-mappings"]) => Route::ListMappings,
        ("GET", [_, "event-source-mappings", uuid]) => Route::GetMapping(uuid.to_string()),
        ("PUT", [_, "event-source-mappings", uuid]) => Route::UpdateMapping(uuid.to_string()),
        ("DELETE", [_, "event-source-mappings", uuid]) => Route::DeleteMapping(uuid.to_string()),
        _ => Route::Other,
    }
}

/// A function's name from a name, a partial ARN or an ARN, without its qualifier.
pub(super) fn function_name(given: &str) -> String {
    match given.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => given.split(':').next().unwrap_or(given).to_string(),
    }
}

const ROLE_NOT_ASSUMABLE: &str = "The role defined for the function cannot be assumed by Lambda.";
const NO_RECEIVE_PERMISSION: &str =
    "The provided execution role does not have permissions to call ReceiveMessage on SQS";

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    match route(exchange) {
        Route::CreateFunction => {
            let body = exchange.json_body();
            role_lag(world, body["Role"].as_str()?, ROLE_NOT_ASSUMABLE)
        }
        Route::UpdateCode(name) => busy(world, exchange, &name),
        Route::UpdateConfiguration(name) => busy(world, exchange, &name).or_else(|| {
            let body = exchange.json_body();
            role_lag(world, body["Role"].as_str()?, ROLE_NOT_ASSUMABLE)
        }),
        Route::CreateMapping => mapping::before_create(world, exchange).or_else(|| {
            let body = exchange.json_body();
            let function = function_name(body["FunctionName"].as_str()?);
            let role = world.functions.get(&function)?.role.clone()?;
            role_lag(world, &role, NO_RECEIVE_PERMISSION)
        }),
        Route::GetMapping(uuid) => mapping::before_get(world, &uuid),
        Route::UpdateMapping(uuid) | Route::DeleteMapping(uuid) => mapping::before_change(world, &uuid),
        _ => None,
    }
}

fn role_lag(world: &World, role_arn: &str, message: &str) -> Option<Verdict> {
    world
        .within(Behaviour::RolePropagation, world.roles_written.get(role_name(role_arn)))
        .then(|| Verdict::Error {
            behaviour: Behaviour::RolePropagation,
            status: 400,
            code: "InvalidParameterValueException",
            message: message.to_string(),
        })
}

fn arn_of(world: &World, exchange: &Exchange, name: &str) -> String {
    world
        .functions
        .get(name)
        .and_then(|f| f.arn.clone())
        .unwrap_or_else(|| format!("arn:aws:lambda:{}:123456789012:function:{name}", exchange.region))
}

/// The conflict AWS answers to an update of a function still being created or updated.
fn busy(world: &World, exchange: &Exchange, name: &str) -> Option<Verdict> {
    let function = world.functions.get(name)?;
    let arn = arn_of(world, exchange, name);
    let message = if world.within(Behaviour::FunctionStates, function.created.as_ref()) {
        format!(
            "The operation cannot be performed at this time. The resource {arn} is currently in the following state: 'Pending'. StateReasonCode: 'Creating'"
        )
    } else if world.within(Behaviour::FunctionStates, function.updated.as_ref()) {
        format!("The operation cannot be performed at this time. An update is in progress for resource: {arn}")
    } else {
        return None;
    };
    Some(Verdict::Error {
        behaviour: Behaviour::FunctionStates,
        status: 409,
        code: "ResourceConflictException",
        message,
    })
}

pub(super) fn after(world: &mut World, exchange: &Exchange, body: &mut Value) -> Vec<Behaviour> {
    let mut rewritten = Vec::new();
    match route(exchange) {
        Route::CreateFunction => {
            let window = world.open_window();
            remember(world, body).created = Some(window);
        }
        Route::UpdateCode(_) | Route::UpdateConfiguration(_) => {
            let window = world.open_window();
            remember(world, body).updated = Some(window);
        }
        Route::GetFunction(name) => {
            remember(world, &body["Configuration"]);
            rewritten.extend(show_states(world, &name, &mut body["Configuration"]));
            if world.is_on(Behaviour::TagsHidden) {
                hide_tags(world, exchange, &name, body);
                rewritten.push(Behaviour::TagsHidden);
            }
        }
        Route::GetConfiguration(name) => {
            remember(world, body);
            rewritten.extend(show_states(world, &name, body));
        }
        Route::DeleteFunction(name) => {
            world.functions.remove(&name);
        }
        Route::CreateMapping | Route::GetMapping(_) | Route::UpdateMapping(_) => mapping::remember(world, body),
        Route::ListMappings => rewritten.extend(mapping::after_list(world, exchange, body)),
        Route::DeleteMapping(uuid) => mapping::after_delete(world, &uuid, body),
        Route::Other => {}
    }
    rewritten
}

/// Record a function's ARN and role from its configuration.
fn remember<'w>(world: &'w mut World, configuration: &Value) -> &'w mut Function {
    let name = configuration["FunctionName"].as_str().unwrap_or_default().to_string();
    let function = world.functions.entry(name).or_default();
    if let Some(arn) = configuration["FunctionArn"].as_str() {
        function.arn = Some(arn.to_string());
    }
    if let Some(role) = configuration["Role"].as_str() {
        function.role = Some(role.to_string());
    }
    function
}

fn show_states(world: &World, name: &str, configuration: &mut Value) -> Option<Behaviour> {
    let function = world.functions.get(name)?;
    if !configuration.is_object() {
        return None;
    }
    if world.within(Behaviour::FunctionStates, function.created.as_ref()) {
        configuration["State"] = json!("Pending");
        configuration["StateReason"] = json!("The function is being created.");
        configuration["StateReasonCode"] = json!("Creating");
        return Some(Behaviour::FunctionStates);
    }
    if world.within(Behaviour::FunctionStates, function.updated.as_ref()) {
        configuration["LastUpdateStatus"] = json!("InProgress");
        return Some(Behaviour::FunctionStates);
    }
    None
}

/// What GetFunction answers to a caller that may read the function but not list its tags.
fn hide_tags(world: &World, exchange: &Exchange, name: &str, body: &mut Value) {
    let arn = arn_of(world, exchange, name);
    let account = arn.split(':').nth(4).unwrap_or("123456789012").to_string();
    if let Some(object) = body.as_object_mut() {
        object.remove("Tags");
        object.insert(
            "TagsError".into(),
            json!({
                "ErrorCode": "AccessDeniedException",
                "Message": format!(
                    "User: arn:aws:sts::{account}:assumed-role/deployer/wsstack is not authorized to perform: lambda:ListTags on resource: {arn} because no identity-based policy allows the lambda:ListTags action"
                ),
            }),
        );
    }
}
