//! The typed graph of a stack: `Key` names each resource, `Value` is what one resource hands to
//! the ones that depend on it, `Values` holds those values for a run, with what the run has read
//! once for several resources (`RunState`). It holds no AWS calls and no ordering logic: `engine`
//! walks the graph, `plan` builds it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewayv2::types::Api;
use aws_smithy_types::DateTime;
use tokio::sync::OnceCell;

use serde::{Serialize, Serializer};

use crate::aws::Aws;
use crate::resources::api_listing::ApiListing;

/// A queue of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueueKind {
    Events,
    /// Chunks of one event's fan-out, each delivered by an invocation of its own.
    Chunks,
    DeadLetter,
}

/// The identity of one resource in the stack's graph: its kind's short name (`function`) and,
/// for a kind with several resources in a stack, which one (`push`); printed `function/push`. Each
/// kind makes its keys in its own file (`Key::function`, `Key::api`, ...), so that a new kind
/// needs nothing here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Something the stack file no longer declares, which `up` deletes.
    retired: bool,
    kind: &'static str,
    which: Option<String>,
}

impl Key {
    /// The one resource of kind `kind` in a stack (`api`).
    pub fn one(kind: &'static str) -> Key {
        Key {
            retired: false,
            kind,
            which: None,
        }
    }

    /// Resource `which` of kind `kind` (`function/push`).
    pub fn each(kind: &'static str, which: impl Into<String>) -> Key {
        Key {
            retired: false,
            kind,
            which: Some(which.into()),
        }
    }

    /// The same resource, retired.
    pub fn retired(self) -> Key {
        Key { retired: true, ..self }
    }
}

impl QueueKind {
    /// How keys name it.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Events => "events",
            QueueKind::Chunks => "chunks",
            QueueKind::DeadLetter => "dead-letter",
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.retired {
            f.write_str("retired/")?;
        }
        f.write_str(self.kind)?;
        match &self.which {
            Some(which) => write!(f, "/{which}"),
            None => Ok(()),
        }
    }
}

/// JSON output keeps the text form (`"function/push"`) it always had.
impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a resource hands to the resources that depend on it (and what discovery finds of them
/// before a run), by kind of value: each key has one kind, which `Values`'s accessors read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The WebSocket API (`Key::api()`).
    Api(ApiId),
    /// The stack's API Gateway authorizer's id (`Key::authorizer()`).
    AuthorizerId(String),
    /// A route (`Key::route(handler)`): its id, which its route response needs, and the authorizer
    /// it named when read, through which the authorizer finds itself again after `$connect` let
    /// go of it.
    Route { id: String, authorizer_id: Option<String> },
    /// An ARN: the certificate, the secret, the topic.
    Arn(String),
    /// What the alias records of the custom domain point at (`Key::domain_name()`).
    DomainTarget(Target),
}

/// The WebSocket API's id, and whether this run created it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiId {
    pub id: String,
    /// `Some` when this run created the API: its CreatedDate as CreateApi answered it (whole
    /// seconds; `None` if it gave none), which the race check of `up` starts from.
    pub created_by_run: Option<Option<DateTime>>,
}

/// What the alias records of the custom domain need of the domain name: found by discovery, or
/// handed on by the domain name resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// The user's hosted zone the records are in.
    pub zone: String,
    /// The API Gateway endpoint (`d-….execute-api.{region}.amazonaws.com`) and its hosted zone.
    pub regional_name: String,
    pub regional_zone: String,
}

/// A value of the desired state that another resource of the run hands on: known, or known only
/// once `up` has created that resource (`plan` and `status` of a stack not made yet). What is
/// known after create never equals what AWS has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Later<T> {
    Known(T),
    /// Known once the resource this names (for a diff: "the API") is created.
    AfterCreate(&'static str),
}

impl<T> Later<T> {
    pub fn known(self) -> Option<T> {
        match self {
            Later::Known(value) => Some(value),
            Later::AfterCreate(_) => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Later<U> {
        match self {
            Later::Known(value) => Later::Known(f(value)),
            Later::AfterCreate(what) => Later::AfterCreate(what),
        }
    }

    /// `f`'s answer with the value, when known.
    pub fn and_then<U>(self, f: impl FnOnce(T) -> Later<U>) -> Later<U> {
        match self {
            Later::Known(value) => f(value),
            Later::AfterCreate(what) => Later::AfterCreate(what),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Later<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Later::Known(value) => value.fmt(f),
            Later::AfterCreate(what) => write!(f, "(known once {what} is created)"),
        }
    }
}

/// What one run reads once for several resources. The run's own writes are known to it (each
/// route resource only looks for its own route and integration in the listing), so nothing here is
/// ever invalidated; a resource that must see other runs' writes lists again itself.
#[derive(Debug, Default)]
pub struct RunState {
    /// The stack's APIs as discovery listed them, for the API resource's first look.
    discovered_apis: Mutex<Option<Vec<Api>>>,
    /// By API id: its routes and integrations, listed on first use (empty for an API the run made).
    listings: Mutex<BTreeMap<String, Arc<OnceCell<Arc<ApiListing>>>>>,
}

impl RunState {
    pub fn set_discovered_apis(&self, apis: Vec<Api>) {
        *self.discovered_apis.lock().expect("run state lock") = Some(apis);
    }

    /// Discovery's listing, once: a second look (after a create found the API already there)
    /// lists again.
    pub fn take_discovered_apis(&self) -> Option<Vec<Api>> {
        self.discovered_apis.lock().expect("run state lock").take()
    }

    /// The listing cell of API `api`, shared by every resource of the run.
    pub fn listing(&self, api: &str) -> Arc<OnceCell<Arc<ApiListing>>> {
        let mut listings = self.listings.lock().expect("run state lock");
        listings.entry(api.to_string()).or_default().clone()
    }

    /// An API this run has just created has no routes or integrations yet.
    pub fn set_empty_listing(&self, api: &str) {
        let cell = OnceCell::new_with(Some(Arc::new(ApiListing::default())));
        let mut listings = self.listings.lock().expect("run state lock");
        listings.insert(api.to_string(), Arc::new(cell));
    }
}

/// Values of finished resources that others need, by the key of the resource that produced them.
/// Seeded before a run by discovery (`discovery::Discovered::resolved`), extended by the engine as
/// resources finish; a resource only ever sees a read-only snapshot. Every snapshot shares the
/// run's `RunState`.
#[derive(Debug, Clone, Default)]
pub struct Values {
    values: BTreeMap<Key, Value>,
    run: Arc<RunState>,
}

/// Equal when the values are: the run state is a cache, not a value.
impl PartialEq for Values {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Values {
    pub fn run(&self) -> &RunState {
        &self.run
    }

    pub(crate) fn set(&mut self, key: Key, value: Option<Value>) {
        match value {
            Some(value) => self.values.insert(key, value),
            None => self.values.remove(&key),
        };
    }

    /// The stack's WebSocket API, once it exists.
    pub fn api(&self) -> Option<&ApiId> {
        match self.values.get(&Key::api()) {
            Some(Value::Api(api)) => Some(api),
            _ => None,
        }
    }

    /// The stack's WebSocket API id, once it exists.
    pub fn api_id(&self) -> Option<&str> {
        self.api().map(|api| api.id.as_str())
    }

    /// The API id for the desired state: known once the API exists.
    pub fn later_api_id(&self) -> Later<&str> {
        self.api_id().map_or(Later::AfterCreate("the API"), Later::Known)
    }

    /// The authorizer id `key` hands on (`Key::authorizer()`, or `Key::route("connect")`).
    pub fn authorizer_id(&self, key: &Key) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::AuthorizerId(id)) => Some(id),
            Some(Value::Route { authorizer_id, .. }) => authorizer_id.as_deref(),
            _ => None,
        }
    }

    /// The id of the route `key` hands on (`Key::route(handler)`), once it exists.
    pub fn route_id(&self, key: &Key) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::Route { id, .. }) => Some(id),
            _ => None,
        }
    }

    /// The stack's authorizer id for the desired state: known once the authorizer exists.
    pub fn later_authorizer_id(&self) -> Later<&str> {
        self.authorizer_id(&Key::authorizer())
            .map_or(Later::AfterCreate("the authorizer"), Later::Known)
    }

    /// The ARN `key` hands on, if it has one.
    pub fn arn(&self, key: &Key) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::Arn(arn)) => Some(arn),
            _ => None,
        }
    }

    /// What the custom domain's alias records point at, once the domain name exists.
    pub fn domain_target(&self) -> Option<&Target> {
        match self.values.get(&Key::domain_name()) {
            Some(Value::DomainTarget(target)) => Some(target),
            _ => None,
        }
    }

    /// The API id, or an error naming what needed it: for writes, which run after the API.
    pub fn require_api(&self, needed_by: &str) -> anyhow::Result<&str> {
        self.api_id()
            .ok_or_else(|| anyhow::anyhow!("internal: the WebSocket API id is unknown for {needed_by}"))
    }

    /// `wss://{api}.execute-api.{region}.amazonaws.com/{stage}`, once the API exists.
    pub fn websocket_url(&self, aws: &Aws, stage: &str) -> Option<String> {
        self.api_id().map(|id| api_url("wss", id, aws, stage))
    }

    /// The URL clients connect to: `wss://{domain}` when the stack file gives `domain:`, else the
    /// stage's own URL; `None` until the API exists.
    pub fn public_url(&self, aws: &Aws, stack: &crate::stack::Stack) -> Option<String> {
        let url = self.websocket_url(aws, &stack.stage)?;
        Some(match &stack.domain {
            Some(domain) => format!("wss://{}", domain.name),
            None => url,
        })
    }

    /// The management (callback) endpoint the handlers post to.
    pub fn callback_url(&self, aws: &Aws, stage: &str) -> Option<String> {
        self.api_id().map(|id| callback_url(id, aws, stage))
    }
}

/// The management (callback) endpoint of API `id`'s stage.
pub fn callback_url(id: &str, aws: &Aws, stage: &str) -> String {
    api_url("https", id, aws, stage)
}

fn api_url(scheme: &str, id: &str, aws: &Aws, stage: &str) -> String {
    format!(
        "{scheme}://{id}.execute-api.{}.{}/{stage}",
        aws.region,
        // Aws::connect refuses a partition without a known suffix.
        aws.arns.dns_suffix().unwrap_or("amazonaws.com")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RoleKind;

    #[test]
    fn keys_print_as_before() {
        assert_eq!(Key::function("push").to_string(), "function/push");
        assert_eq!(Key::role(RoleKind::Routes).to_string(), "role/routes");
        assert_eq!(Key::route("subscribe").retired().to_string(), "retired/route/subscribe");
        assert_eq!(Key::api().to_string(), "api");
        assert_eq!(Key::dns_record("AAAA").to_string(), "dns-record/AAAA");
        assert_eq!(
            serde_json::to_value(Key::queue(QueueKind::DeadLetter)).unwrap(),
            "queue/dead-letter"
        );
    }
}
