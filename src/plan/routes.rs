//! Routes with the team's own code: per route a role of its own, log group, function, permission
//! and route; and, retired, those of own routes the stack file no longer lists, found by the
//! function names discovery saw (`names::own_route_key`). Pure: no AWS calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::pieces::{function_and_logs, route_and_permission, route_response};
use super::policies::manage_connections;
use super::{tags, HandlerResources};
use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::discovery::Discovered;
use crate::graph::Key;
use crate::names::{own_route_handler, own_route_key, Arns, Names, RoleKind};
use crate::resources::role::RoleSpec;
use crate::resources::route_response::RouteResponseSpec;
use crate::resources::table::INDEX_NAME;
use crate::resources::{Resource, Retired};
use crate::stack::Stack;

/// What an own route's function may do: the table's items (and its index, to find an entity's
/// subscribers), posting to, reading and closing this stage's connections, its own log group.
fn policy(stack: &Stack, names: &Names, arns: &Arns, api: &str, handler: &str) -> Value {
    let table = arns.table(&names.table());
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TableItems",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                    "dynamodb:Query", "dynamodb:BatchWriteItem"
                ],
                "Resource": [table.clone(), format!("{table}/index/{INDEX_NAME}")]
            },
            manage_connections(stack, arns, api, "*"),
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [format!("{}:*", arns.log_group(&names.log_group(handler)))]
            }
        ]
    })
}

/// The role and the handler resources of the own route `route_key`; `package` is its code
/// (`None` for a retired route, which is only deleted).
fn own_route(
    stack: &Stack,
    aws: &Aws,
    route_key: &str,
    replies: bool,
    package: Option<Bundle>,
) -> (RoleSpec, HandlerResources) {
    let names = &aws.names;
    let handler = own_route_handler(route_key);
    let role = RoleKind::Own(handler.clone());
    let write_policy = {
        let (stack, names, arns, handler) = (stack.clone(), names.clone(), aws.arns.clone(), handler.clone());
        Arc::new(move |api: &str| policy(&stack, &names, &arns, api, &handler))
    };
    let role_spec = RoleSpec {
        role: role.clone(),
        name: names.role(role.clone()),
        description: format!("wsstack {}/{}: route {route_key}", stack.name, stack.stage),
        policy: write_policy,
        tags: tags(stack),
    };
    // CALLBACK_URL (the management endpoint) is added by the function spec once the API exists.
    let environment = BTreeMap::from([
        ("TABLE_NAME".to_string(), names.table()),
        ("WSSTACK_ROUTE".to_string(), route_key.to_string()),
    ]);
    let description = format!("wsstack {}/{}: route {route_key}", stack.name, stack.stage);
    let (log_group, function) = function_and_logs(stack, aws, &handler, role, description, environment, package);
    let (permission, route) = route_and_permission(stack, aws, &handler, route_key, false, replies);
    let resources = HandlerResources {
        log_group,
        function,
        permission: Some(permission),
        route: Some(route),
    };
    (role_spec, resources)
}

/// The resources of every own route the stack file lists, and the keys of what puts each in
/// service (its route, permission and role policy: the stage deploys after them).
pub(super) fn declared(stack: &Stack, aws: &Aws) -> (Vec<Arc<dyn Resource>>, Vec<Key>) {
    let mut resources: Vec<Arc<dyn Resource>> = Vec::new();
    let mut route_keys = Vec::new();
    for own in stack.own_routes() {
        let package = own.package.as_ref().map(|p| Bundle {
            zip: p.zip.to_vec(),
            sha256: p.sha256.clone(),
        });
        let (role, h) = own_route(stack, aws, &own.name, own.replies, package);
        let handler = h.function.handler.clone();
        route_keys.extend([
            Key::route(handler.clone()),
            Key::permission(handler.clone()),
            Key::role_policy(RoleKind::Own(handler)),
        ]);
        resources.push(Arc::new(role.policy_resource()));
        resources.push(Arc::new(role));
        resources.push(Arc::new(h.log_group));
        resources.push(Arc::new(h.function));
        resources.extend(h.permission.map(|p| Arc::new(p) as Arc<dyn Resource>));
        if let Some(route) = h.route {
            let (response, key) = route_response(&route);
            route_keys.push(key);
            resources.push(Arc::new(route));
            resources.push(response);
        }
    }
    (resources, route_keys)
}

/// Own routes whose functions discovery found but the stack file no longer lists, taken down
/// route, permission, log group, role, and the function last: it is what finds the others again,
/// so a run that fails half-way leaves it for the next run to start from.
pub(super) fn retired(stack: &Stack, aws: &Aws, found: &Discovered) -> Vec<Arc<dyn Resource>> {
    let declared: Vec<String> = stack.own_routes().map(|own| own_route_handler(&own.name)).collect();
    let mut resources: Vec<Arc<dyn Resource>> = Vec::new();
    for (handler, _) in &found.own_routes {
        let Some(route_key) = own_route_key(handler) else {
            continue;
        };
        if declared.iter().any(|d| d == handler) {
            continue;
        }
        let (role, h) = own_route(stack, aws, &route_key, false, None);
        let retired = |resource: Arc<dyn Resource>, after: Option<Key>| -> Arc<dyn Resource> {
            Arc::new(Retired {
                depends_on: vec![after.map(Key::retired).unwrap_or(Key::api())],
                inner: resource,
            })
        };
        let handler = handler.to_string();
        if let (Some(route), Some(permission)) = (h.route, h.permission) {
            // Its route response first: whether API Gateway deletes a route's responses with it
            // is not documented.
            resources.push(retired(Arc::new(RouteResponseSpec::of(&route)), None));
            resources.push(retired(Arc::new(route), Some(Key::route_response(handler.clone()))));
            resources.push(retired(Arc::new(permission), Some(Key::route(handler.clone()))));
        }
        resources.push(retired(Arc::new(h.log_group), Some(Key::permission(handler.clone()))));
        resources.push(retired(Arc::new(role), Some(Key::log_group(handler.clone()))));
        resources.push(retired(
            Arc::new(h.function),
            Some(Key::role(RoleKind::Own(handler.clone()))),
        ));
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{OwnRoute, Route};

    fn stack_with_own_route() -> Stack {
        let mut stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        stack.routes.push(Route::Own(OwnRoute {
            name: "sendMessage".into(),
            code: None,
            bootstrap: Some("bootstrap".into()),
            schema: None,
            replies: false,
            package: None,
        }));
        stack
    }

    #[test]
    fn an_own_route_has_its_own_role_scoped_to_its_logs() {
        let stack = stack_with_own_route();
        let aws = Aws::offline(Names::new(&stack, "eu-west-1"));
        let (resources, route_keys) = declared(&stack, &aws);
        let keys: Vec<String> = resources.iter().map(|r| r.key().to_string()).collect();
        assert_eq!(
            keys,
            [
                "role-policy/route-sendMessage",
                "role/route-sendMessage",
                "log-group/route-sendMessage",
                "function/route-sendMessage",
                "permission/route-sendMessage",
                "route/route-sendMessage",
                // One-way: a route response left from when it replied goes.
                "retired/route-response/route-sendMessage"
            ]
        );
        // The stage deploys once the route can run: route, permission and the role's policy, and
        // once the route is one-way.
        assert_eq!(
            route_keys,
            [
                Key::route("route-sendMessage"),
                Key::permission("route-sendMessage"),
                Key::role_policy(RoleKind::Own("route-sendMessage".into())),
                Key::route_response("route-sendMessage").retired()
            ]
        );
        let policy = policy(&stack, &aws.names, &aws.arns, "abc", "route-sendMessage").to_string();
        assert!(policy.contains(":abc/dev/*/@connections/*"), "{policy}");
        assert!(
            policy.contains("log-group:/aws/lambda/demo-dev-route-sendMessage:*"),
            "{policy}"
        );
        assert!(!policy.contains("demo-dev-subscribe"), "{policy}");
    }

    #[test]
    fn a_found_function_of_an_unlisted_own_route_is_retired_function_last() {
        let stack = stack_with_own_route();
        let aws = Aws::offline(Names::new(&stack, "eu-west-1"));
        let found = Discovered {
            own_routes: ["route-sendMessage", "default-route"]
                .map(|handler| (handler.to_string(), format!("arn:{handler}")))
                .to_vec(),
            authorizer_function: Some("arn:authorizer".into()),
            ..Discovered::default()
        };
        let retired = retired(&stack, &aws, &found);
        let keys: Vec<String> = retired.iter().map(|r| r.key().to_string()).collect();
        assert_eq!(
            keys,
            [
                "retired/route-response/default-route",
                "retired/route/default-route",
                "retired/permission/default-route",
                "retired/log-group/default-route",
                "retired/role/default-route",
                "retired/function/default-route"
            ]
        );
        assert_eq!(
            retired[1].depends_on(),
            [Key::route_response("default-route").retired()]
        );
        assert_eq!(
            retired[5].depends_on(),
            [Key::role(RoleKind::Own("default-route".into())).retired()]
        );
    }
}
