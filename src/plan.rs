//! From a stack file to the desired resources: one spec per AWS resource, with its physical name,
//! settings, least-privilege policies, tags and dependencies. Pure: no AWS calls.

pub mod alarms;
mod auth;
mod domain;
mod events;
mod pieces;
mod policies;
mod routes;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::discovery::Discovered;
use crate::graph::{Key, QueueKind};
use crate::names::{handlers, own_route_key, Arns, Names, RoleKind};
use crate::resources::api::ApiSpec;
use crate::resources::event_source::EventSourceSpec;
use crate::resources::function::FunctionSpec;
use crate::resources::log_group::{LogGroupSpec, ACCESS};
use crate::resources::permission::PermissionSpec;
use crate::resources::queue::{Attribute, QueueSpec};
use crate::resources::role::RoleSpec;
use crate::resources::route::RouteSpec;
use crate::resources::route_response::RouteResponseSpec;
use crate::resources::rule::RuleSpec;
use crate::resources::stage::{AccessLog, Limits, StageSpec, ACCESS_LOG_FORMAT};
use crate::resources::table::TableSpec;
use crate::resources::{Resource, Retired, Tags};
use crate::stack::{BillingMode, Stack, KNOWN_ROUTES, TAG_STACK, TAG_STAGE};
use events::push_environment;
pub use events::{event_pattern, event_source, patterns_overlap};
use pieces::{function_and_logs, route_and_permission, route_response};
use policies::{push_policy, queue_policy, routes_policy};

/// The route key API Gateway uses for a handler.
pub fn route_key(handler: &str) -> String {
    match handler {
        "connect" => "$connect".into(),
        "disconnect" => "$disconnect".into(),
        other => other.into(),
    }
}

/// The tags every resource of the stack carries.
pub fn tags(stack: &Stack) -> Tags {
    let mut tags: Tags = stack.tags.clone();
    tags.insert(TAG_STACK.into(), stack.name.clone());
    tags.insert(TAG_STAGE.into(), stack.stage.clone());
    tags
}

/// What the plan is built from besides the stack file and the clients.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The handlers package: needed to create functions; without it code is not compared.
    pub bundle: Option<&'a Bundle>,
    /// What discovery found: what an earlier stack file made that this one takes away.
    pub found: &'a Discovered,
    /// The event sources a running `wsstack dev` of this stack paused on purpose (its own poller
    /// replaces them): their being disabled is no drift, and `up` leaves them so.
    pub dev_paused: &'a [String],
}

/// Every resource of the stack, in no particular order (the engine orders them).
pub fn resources(stack: &Stack, aws: &Aws, inputs: Inputs<'_>) -> Vec<Arc<dyn Resource>> {
    let Inputs {
        bundle,
        found,
        dev_paused,
    } = inputs;
    let mut resources = event_path(stack, aws);
    resources.extend(compute_and_api(stack, aws, bundle, dev_paused));
    resources.extend(alarms::resources(stack, aws));
    resources.extend(routes::retired(stack, aws, found));
    if stack.auth.is_some() || found.auth_left_behind() {
        resources.extend(auth::resources(stack, aws, bundle));
    }
    resources.extend(domain::resources(stack, found));
    resources
}

/// The handler-independent part: roles, table, queues, rule.
fn event_path(stack: &Stack, aws: &Aws) -> Vec<Arc<dyn Resource>> {
    let names = &aws.names;
    let tags = tags(stack);
    let queue = &stack.queue;

    let dead_letter_attributes: BTreeMap<String, Attribute> = [(
        "MessageRetentionPeriod",
        Attribute::Text(queue.dead_letter.message_retention_seconds.to_string()),
    )]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let queue_attributes: BTreeMap<String, Attribute> = [
        (
            "VisibilityTimeout",
            Attribute::Text(queue.visibility_timeout_seconds.to_string()),
        ),
        (
            "MessageRetentionPeriod",
            Attribute::Text(queue.message_retention_seconds.to_string()),
        ),
        (
            "ReceiveMessageWaitTimeSeconds",
            Attribute::Text(queue.receive_wait_seconds.to_string()),
        ),
        (
            "RedrivePolicy",
            Attribute::Json(json!({
                "deadLetterTargetArn": aws.arns.queue(&names.dead_letter_queue()),
                "maxReceiveCount": queue.dead_letter.max_receive_count
            })),
        ),
        ("Policy", Attribute::Json(queue_policy(stack, aws))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // The chunk queue keeps the events queue's timings and dead-letter queue; only the push role
    // sends to it (its IAM policy says so; no queue policy is needed within the account).
    let mut chunk_queue_attributes = queue_attributes.clone();
    chunk_queue_attributes.remove("Policy");

    let role = |role: RoleKind, what: &str, write: fn(&Stack, &Names, &Arns, &str) -> Value| {
        let (for_stack, for_names, arns) = (stack.clone(), names.clone(), aws.arns.clone());
        RoleSpec {
            name: names.role(role.clone()),
            role,
            description: format!("wsstack {}/{}: {what}", stack.name, stack.stage),
            policy: Arc::new(move |api: &str| write(&for_stack, &for_names, &arns, api)),
            tags: tags.clone(),
        }
    };
    let routes_role = role(RoleKind::Routes, "WebSocket route handlers", routes_policy);
    let push_role = role(RoleKind::Push, "push handler", push_policy);
    vec![
        Arc::new(routes_role.policy_resource()),
        Arc::new(routes_role),
        Arc::new(push_role.policy_resource()),
        Arc::new(push_role),
        Arc::new(TableSpec {
            name: names.table(),
            billing: match stack.table.billing_mode {
                BillingMode::OnDemand => aws_sdk_dynamodb::types::BillingMode::PayPerRequest,
            },
            tags: tags.clone(),
        }),
        Arc::new(QueueSpec {
            queue: QueueKind::DeadLetter,
            name: names.dead_letter_queue(),
            attributes: dead_letter_attributes,
            tags: tags.clone(),
        }),
        Arc::new(QueueSpec {
            queue: QueueKind::Events,
            name: names.queue(),
            attributes: queue_attributes,
            tags: tags.clone(),
        }),
        Arc::new(QueueSpec {
            queue: QueueKind::Chunks,
            name: names.chunk_queue(),
            attributes: chunk_queue_attributes,
            tags: tags.clone(),
        }),
        Arc::new(RuleSpec {
            name: names.rule(),
            bus: stack.events.bus.clone(),
            arn: aws.arns.rule(&stack.events.bus, &names.rule()),
            description: format!(
                "wsstack {}/{}: {} and {} events to the push queue",
                stack.name, stack.stage, stack.events.detail_type, stack.events.user_detail_type
            ),
            pattern: event_pattern(stack),
            target_id: names.rule_target_id().into(),
            target_arn: aws.arns.queue(&names.queue()),
            tags,
            shared: stack.events.shared,
        }),
    ]
}

struct HandlerResources {
    log_group: LogGroupSpec,
    function: FunctionSpec,
    permission: Option<PermissionSpec>,
    route: Option<RouteSpec>,
}

fn handler_resources(stack: &Stack, aws: &Aws, bundle: Option<&Bundle>, handler: &str) -> HandlerResources {
    let role = if handler == "push" {
        RoleKind::Push
    } else {
        RoleKind::Routes
    };
    let mut environment = BTreeMap::new();
    environment.insert("WSSTACK_HANDLER".to_string(), handler.to_string());
    environment.insert("TABLE_NAME".to_string(), aws.names.table());
    environment.insert("TTL_HOURS".to_string(), stack.table.ttl_hours.to_string());
    if handler == "subscribe" {
        let most = stack.handlers.max_subscriptions_per_connection;
        environment.insert("MAX_SUBSCRIPTIONS".to_string(), most.to_string());
    }
    // The push handler numbers and keeps events; `subscribe` and `resume` replay them.
    if matches!(handler, "subscribe" | "resume" | "push") && stack.history.window_seconds > 0 {
        environment.insert(
            "HISTORY_WINDOW_SECONDS".to_string(),
            stack.history.window_seconds.to_string(),
        );
        environment.insert("HISTORY_MAX_REPLAY".to_string(), stack.history.max_replay.to_string());
    }
    if handler == "push" {
        environment.extend(push_environment(stack, aws.arns.queue(&aws.names.chunk_queue())));
    }
    let description = format!("wsstack {}/{}: {handler} handler", stack.name, stack.stage);
    let (log_group, function) = function_and_logs(stack, aws, handler, role, description, environment, bundle.cloned());
    let route = (handler != "push").then(|| {
        route_and_permission(
            stack,
            aws,
            handler,
            &route_key(handler),
            handler == "connect" && stack.auth.is_some(),
            acknowledges(handler),
        )
    });
    let (permission, route) = route.unzip();
    HandlerResources {
        log_group,
        function,
        permission,
        route,
    }
}

/// The stage's access log group, with the handlers' retention.
fn access_log_group(stack: &Stack, aws: &Aws) -> LogGroupSpec {
    let name = aws.names.access_log_group();
    LogGroupSpec {
        handler: ACCESS.to_string(),
        // The group's own ARN, without the `:*` DescribeLogGroups appends: the form
        // AccessLogSettings.DestinationArn takes.
        arn: aws.arns.log_group(&name),
        name,
        retention_days: stack.handlers.log_retention_days as i32,
        tags: tags(stack),
    }
}

/// `throttle:` as the stage's default route settings and its route keys' own.
pub fn stage_throttles(stack: &Stack) -> (Option<Limits>, BTreeMap<String, Limits>) {
    let Some(throttle) = &stack.throttle else {
        return (None, BTreeMap::new());
    };
    let limits = |rate: f64, burst: u32| Limits {
        rate,
        burst: burst as i32,
    };
    let routes = throttle
        .routes
        .iter()
        .map(|(key, l)| (key.clone(), limits(l.rate, l.burst)))
        .collect();
    (Some(limits(throttle.rate, throttle.burst)), routes)
}

/// Whether a bundled route answers the client through its route response: `subscribe`,
/// `unsubscribe` and `resume` acknowledge (`{"type":"subscribed",...}`); `$connect` and
/// `$disconnect` cannot.
fn acknowledges(handler: &str) -> bool {
    matches!(handler, "subscribe" | "unsubscribe" | "resume")
}

/// Functions, their log groups and permissions, the API with its routes and stage, and the event
/// sources of the events and chunk queues; plus, retired, what belongs to known routes the stack
/// file dropped.
fn compute_and_api(stack: &Stack, aws: &Aws, bundle: Option<&Bundle>, dev_paused: &[String]) -> Vec<Arc<dyn Resource>> {
    let mut resources: Vec<Arc<dyn Resource>> = vec![Arc::new(ApiSpec {
        name: aws.names.prefix.clone(),
        stack: stack.name.clone(),
        stage: stack.stage.clone(),
        description: format!("wsstack {}/{}: entity update notifications", stack.name, stack.stage),
        ip_address_type: stack.ip_address_type.as_str().to_string(),
        tags: tags(stack),
    })];
    let (own, own_in_service) = routes::declared(stack, aws);
    resources.extend(own);
    // The stage puts the routes in service: after them, their permissions and their roles' policies.
    let mut in_service = vec![Key::role_policy(RoleKind::Routes)];
    in_service.extend(own_in_service);
    for handler in handlers(stack).into_iter().filter(|h| own_route_key(h).is_none()) {
        let h = handler_resources(stack, aws, bundle, &handler);
        resources.push(Arc::new(h.log_group));
        resources.push(Arc::new(h.function));
        if let (Some(permission), Some(route)) = (h.permission, h.route) {
            in_service.extend([Key::route(handler.clone()), Key::permission(handler.clone())]);
            if route.replies {
                let (response, key) = route_response(&route);
                in_service.push(key);
                resources.push(response);
            }
            resources.push(Arc::new(permission));
            resources.push(Arc::new(route));
        }
    }
    let (throttle, route_throttles) = stage_throttles(stack);
    let access_log = stack.access_logs.then(|| {
        // The stage writes into its log group: made first.
        let group = access_log_group(stack, aws);
        in_service.push(Key::access_log_group());
        let access_log = AccessLog {
            destination_arn: group.arn.clone(),
            format: ACCESS_LOG_FORMAT.to_string(),
        };
        resources.push(Arc::new(group));
        access_log
    });
    if !stack.access_logs {
        // Turned off: the stage stops writing first, then the group goes, as a dropped route's does.
        resources.push(Arc::new(Retired {
            depends_on: vec![Key::stage()],
            inner: Arc::new(access_log_group(stack, aws)),
        }));
    }
    resources.push(Arc::new(StageSpec {
        name: stack.stage.clone(),
        description: format!("wsstack {}/{}", stack.name, stack.stage),
        throttle,
        route_throttles,
        access_log,
        tags: tags(stack),
        depends_on: in_service,
    }));
    // Events in batches from the stack file; chunks one per invocation: an invocation posts at its
    // share of the budget, so the chunks of one event are posted by as many invocations at once as
    // the mapping allows.
    let sources = [
        (
            QueueKind::Events,
            aws.names.queue(),
            stack.handlers.push_batch_size as i32,
        ),
        (QueueKind::Chunks, aws.names.chunk_queue(), 1),
    ];
    for (queue, name, batch_size) in sources {
        resources.push(Arc::new(EventSourceSpec {
            function: aws.names.function("push"),
            queue,
            queue_arn: aws.arns.queue(&name),
            batch_size,
            max_concurrency: stack.handlers.push.max_concurrency as i32,
            paused_by_dev: dev_paused.to_vec(),
        }));
    }
    for dropped in KNOWN_ROUTES.iter().filter(|r| !stack.has_bundled_route(r)) {
        let h = handler_resources(stack, aws, bundle, dropped);
        let route = h.route.expect("a known route has a route");
        let permission = h.permission.expect("a known route has a permission");
        // Taken down in the reverse of the order they go up in: route response, route, permission,
        // function, logs.
        let retired = |resource: Arc<dyn Resource>, after: Option<Key>| -> Arc<dyn Resource> {
            Arc::new(Retired {
                depends_on: vec![after.map(Key::retired).unwrap_or(Key::api())],
                inner: resource,
            })
        };
        let dropped = dropped.to_string();
        // Its route response first: whether API Gateway deletes a route's responses with it is not
        // documented.
        resources.push(retired(Arc::new(RouteResponseSpec::of(&route)), None));
        resources.push(retired(Arc::new(route), Some(Key::route_response(dropped.clone()))));
        resources.push(retired(Arc::new(permission), Some(Key::route(dropped.clone()))));
        resources.push(retired(Arc::new(h.function), Some(Key::permission(dropped.clone()))));
        resources.push(retired(Arc::new(h.log_group), Some(Key::function(dropped))));
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Architecture;

    #[test]
    fn every_resource_is_tagged_with_the_stack() {
        let stack = crate::stack::parse(
            std::path::Path::new("s.yaml"),
            "name: demo\nstage: prod\nroutes: [subscribe]\ntags:\n  team: a\n",
        )
        .unwrap();
        let tags = tags(&stack);
        assert_eq!(tags[TAG_STACK], "demo");
        assert_eq!(tags[TAG_STAGE], "prod");
        assert_eq!(tags["team"], "a");
        // Every spec the plan produces, retired ones included: a tagged kind carries all of them;
        // only the kinds AWS keeps no tags on carry none.
        let aws = Aws::offline(crate::names::Names::new(&stack, "eu-west-1"));
        let found = Discovered::default();
        let inputs = Inputs {
            bundle: None,
            found: &found,
            dev_paused: &[],
        };
        let resources = resources(&stack, &aws, inputs);
        let mut tagged = 0;
        for resource in &resources {
            match resource.tags() {
                Some(spec) => {
                    tagged += 1;
                    assert_eq!(spec, &tags, "{} {}", resource.kind(), resource.key());
                }
                None => assert!(
                    [
                        "API route",
                        "API route response",
                        "Lambda permission",
                        "event source",
                        "IAM role policy"
                    ]
                    .contains(&resource.kind()),
                    "{} {} has no tags",
                    resource.kind(),
                    resource.key()
                ),
            }
        }
        // 2 roles, table, 3 queues, rule, API, stage, its access log group, alarm topic, DLQ alarm,
        // and a function and log group for each of connect, disconnect, subscribe, push and the
        // retired unsubscribe and resume.
        assert_eq!(tagged, 24);
    }

    #[test]
    fn history_numbers_pushes_and_lets_the_route_handlers_replay_only_when_it_is_on() {
        for (text, on) in [
            ("name: demo\n", true),
            ("name: demo\nhistory: {window_seconds: 0}\n", false),
        ] {
            let stack = crate::stack::parse(std::path::Path::new("s.yaml"), text).unwrap();
            let aws = Aws::offline(crate::names::Names::new(&stack, "eu-west-1"));
            let window = |handler: &str| {
                handler_resources(&stack, &aws, None, handler)
                    .function
                    .environment
                    .get("HISTORY_WINDOW_SECONDS")
                    .cloned()
            };
            for handler in ["subscribe", "push"] {
                assert_eq!(window(handler).as_deref(), on.then_some("300"), "{text}{handler}");
            }
            assert_eq!(window("connect"), None);
            let routes = policies::routes_policy(&stack, &aws.names, &aws.arns, "a1b2c3").to_string();
            assert_eq!(routes.contains("execute-api:ManageConnections"), on, "{text}{routes}");
            let push = policies::push_policy(&stack, &aws.names, &aws.arns, "a1b2c3").to_string();
            assert_eq!(push.contains("NumberAndKeepEvents"), on, "{text}{push}");
        }
    }

    #[test]
    fn the_dead_settings_reach_the_specs() {
        let stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
        let aws = Aws::offline(crate::names::Names::new(&stack, "eu-west-1"));
        let h = handler_resources(&stack, &aws, None, "push");
        assert_eq!(h.function.architecture, aws_sdk_lambda::types::Architecture::X8664);
        let mut arm = stack.clone();
        arm.handlers.architecture = Architecture::Arm64;
        let h = handler_resources(&arm, &aws, None, "push");
        assert_eq!(h.function.architecture, aws_sdk_lambda::types::Architecture::Arm64);
    }
}
