//! API Gateway authorizers in realism mode: DeleteAuthorizer answers 409 ConflictException
//! "Cannot delete authorizer '...', is referenced in route: $connect" while a route of the API
//! refers to the authorizer, and for a while after the last route stopped referring to it. The
//! emulator deletes it either way, and keeps a route's authorizer id when UpdateRoute is not given
//! one, as API Gateway does.

use std::collections::HashMap;

use serde_json::Value;

use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Authorizers {
    /// (API id, route id) -> the route's key and authorizer id, as the last answer about it said.
    routes: HashMap<(String, String), (String, String)>,
    /// (API id, authorizer id) -> since the last route referring to it let go.
    released: HashMap<(String, String), Window>,
}

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if exchange.method != "DELETE" || !world.is_on(Behaviour::AuthorizerReferenced) {
        return None;
    }
    let segments = exchange.segments();
    let ["v2", "apis", api, "authorizers", id] = segments.iter().map(String::as_str).collect::<Vec<_>>()[..] else {
        return None;
    };
    let referring = world
        .authorizers
        .routes
        .iter()
        .find(|((route_api, _), (_, authorizer))| route_api == api && authorizer == id)
        .map(|(_, (key, _))| key.clone());
    let released = world.authorizers.released.get(&(api.to_string(), id.to_string()));
    let key = match referring {
        Some(key) => key,
        None if world.within(Behaviour::AuthorizerReferenced, released) => "$connect".to_string(),
        None => return None,
    };
    Some(Verdict::Error {
        behaviour: Behaviour::AuthorizerReferenced,
        status: 409,
        code: "ConflictException",
        message: format!("Cannot delete authorizer '{id}', is referenced in route: {key}"),
    })
}

/// Every answer that shows routes: what each refers to now.
pub(super) fn after(world: &mut World, exchange: &Exchange, body: &Value) {
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let api = match parts.as_slice() {
        ["v2", "apis", api, "routes", ..] => api.to_string(),
        _ => return,
    };
    if exchange.method == "DELETE" {
        if let ["v2", "apis", _, "routes", route] = parts.as_slice() {
            let gone = world.authorizers.routes.remove(&(api.clone(), route.to_string()));
            if let Some((_, authorizer)) = gone.filter(|(_, authorizer)| !authorizer.is_empty()) {
                release(world, &api, authorizer);
            }
        }
        return;
    }
    let routes: Vec<&Value> = match body["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![body],
    };
    for route in routes {
        let (Some(id), Some(key)) = (route["routeId"].as_str(), route["routeKey"].as_str()) else {
            continue;
        };
        let authorizer = route["authorizerId"].as_str().unwrap_or_default().to_string();
        let before = world
            .authorizers
            .routes
            .insert((api.clone(), id.to_string()), (key.to_string(), authorizer.clone()));
        if let Some((_, previous)) = before.filter(|(_, previous)| !previous.is_empty() && *previous != authorizer) {
            release(world, &api, previous);
        }
    }
}

fn release(world: &mut World, api: &str, authorizer: String) {
    let window = world.open_window();
    world.authorizers.released.insert((api.to_string(), authorizer), window);
}
