//! The pieces every handler's resources are made of, bundled or own: its function with its log
//! group, and its route with the permission scoped to it. Pure: no AWS calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::tags;
use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::graph::Key;
use crate::names::RoleKind;
use crate::resources::function::FunctionSpec;
use crate::resources::log_group::LogGroupSpec;
use crate::resources::permission::PermissionSpec;
use crate::resources::route::RouteSpec;
use crate::resources::route_response::RouteResponseSpec;
use crate::resources::{Resource, Retired};
use crate::stack::{Architecture, Stack};

/// A handler's function, run by `role` with `bundle` as its code, and its log group.
pub(super) fn function_and_logs(
    stack: &Stack,
    aws: &Aws,
    handler: &str,
    role: RoleKind,
    description: String,
    environment: BTreeMap<String, String>,
    bundle: Option<Bundle>,
) -> (LogGroupSpec, FunctionSpec) {
    let names = &aws.names;
    let tags = tags(stack);
    let function = names.function(handler);
    let log_group = names.log_group(handler);
    let logs = LogGroupSpec {
        handler: handler.to_string(),
        arn: aws.arns.log_group(&log_group),
        name: log_group,
        retention_days: stack.handlers.log_retention_days as i32,
        tags: tags.clone(),
    };
    let function = FunctionSpec {
        handler: handler.to_string(),
        arn: aws.arns.function(&function),
        name: function,
        stage: stack.stage.clone(),
        description,
        role_arn: aws.arns.role(&names.role(role.clone())),
        role,
        memory_mb: stack.handlers.memory_mb as i32,
        timeout_seconds: stack.handlers.timeout_seconds as i32,
        architecture: match stack.handlers.architecture {
            Architecture::X86_64 => aws_sdk_lambda::types::Architecture::X8664,
            Architecture::Arm64 => aws_sdk_lambda::types::Architecture::Arm64,
        },
        environment,
        bundle,
        tags,
    };
    (logs, function)
}

/// The route `route_key` with its integration to the handler's function (two-way when it
/// `replies`), and the permission that lets API Gateway invoke it for that route only.
pub(super) fn route_and_permission(
    stack: &Stack,
    aws: &Aws,
    handler: &str,
    route_key: &str,
    authorized: bool,
    replies: bool,
) -> (PermissionSpec, RouteSpec) {
    let function = aws.names.function(handler);
    let permission = PermissionSpec {
        handler: handler.to_string(),
        function: function.clone(),
        stage: stack.stage.clone(),
        route_key: route_key.to_string(),
        authorizer: false,
    };
    let route = RouteSpec {
        handler: handler.to_string(),
        route_key: route_key.to_string(),
        integration_uri: aws.arns.function_invocation(&function),
        authorized,
        replies,
    };
    (permission, route)
}

/// The route response of `route`: wanted when the route replies; else retired, so that a route
/// that stops replying loses it. With the key the stage waits for.
pub(super) fn route_response(route: &RouteSpec) -> (Arc<dyn Resource>, Key) {
    let spec = RouteResponseSpec::of(route);
    let key = Key::route_response(route.handler.clone());
    if route.replies {
        return (Arc::new(spec), key);
    }
    let retired = Retired {
        inner: Arc::new(spec),
        depends_on: vec![Key::route(route.handler.clone())],
    };
    (Arc::new(retired), key.retired())
}
