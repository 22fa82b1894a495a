//! The typed graph of a stack: `Key` names each resource, `Resolved` carries the values one
//! resource hands to the ones that depend on it (the WebSocket API id today) and what the run has
//! read once for several of them (`RunState`). It holds no AWS calls and no ordering logic:
//! `engine` walks the graph, `plan` builds it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewayv2::types::{Api, Integration, Route};
use tokio::sync::OnceCell;

use serde::{Serialize, Serializer};

use crate::aws::Aws;
use crate::names::RoleKind;

/// What a value from the API shows as in a diff while the API does not exist yet (`plan` and
/// `status` before the first `up`).
pub const NEW_API: &str = "(new API)";

/// A queue of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueueKind {
    Events,
    DeadLetter,
}

/// The identity of one resource in the stack's graph. Handlers are named by their handler name
/// (`connect`, `push`, a route).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Role(RoleKind),
    /// The role's inline policy `wsstack`: its own resource, because it names the API, and the
    /// role (so the functions) need not wait for the API.
    RolePolicy(RoleKind),
    Table,
    Queue(QueueKind),
    Rule,
    Api,
    Stage,
    EventSource,
    LogGroup(String),
    Function(String),
    Permission(String),
    Route(String),
    /// The stack's HS256 key (`auth: {secret: generated}`); its value to dependants is its ARN.
    Secret,
    /// The API Gateway REQUEST authorizer on `$connect`; its value is the authorizer id.
    Authorizer,
    /// The SNS topic the alarms notify, with the email subscription; its value is its ARN.
    Topic,
    /// The CloudWatch alarm on a queue (the dead-letter queue).
    Alarm(QueueKind),
    /// The ACM certificate `up` requested for `domain:`; its value is its ARN.
    Certificate,
    /// The API Gateway custom domain name; its value is a `domain_name::Target`.
    DomainName,
    /// The mapping of the custom domain to the stack's API and stage.
    ApiMapping,
    /// A Route 53 alias record (`A` or `AAAA`) of the custom domain.
    DnsRecord(&'static str),
    /// Something the stack file no longer declares, which `up` deletes.
    Retired(Box<Key>),
}

impl Key {
    pub fn retired(self) -> Key {
        Key::Retired(Box::new(self))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Role(kind) => write!(f, "role/{}", kind.suffix()),
            Key::RolePolicy(kind) => write!(f, "role-policy/{}", kind.suffix()),
            Key::Table => f.write_str("table"),
            Key::Queue(QueueKind::Events) => f.write_str("queue/events"),
            Key::Queue(QueueKind::DeadLetter) => f.write_str("queue/dead-letter"),
            Key::Rule => f.write_str("rule"),
            Key::Api => f.write_str("api"),
            Key::Stage => f.write_str("stage"),
            Key::EventSource => f.write_str("event-source"),
            Key::LogGroup(h) => write!(f, "log-group/{h}"),
            Key::Function(h) => write!(f, "function/{h}"),
            Key::Permission(h) => write!(f, "permission/{h}"),
            Key::Route(h) => write!(f, "route/{h}"),
            Key::Secret => f.write_str("secret"),
            Key::Authorizer => f.write_str("authorizer"),
            Key::Topic => f.write_str("topic"),
            Key::Alarm(QueueKind::Events) => f.write_str("alarm/events"),
            Key::Alarm(QueueKind::DeadLetter) => f.write_str("alarm/dead-letter"),
            Key::Certificate => f.write_str("certificate"),
            Key::DomainName => f.write_str("domain-name"),
            Key::ApiMapping => f.write_str("api-mapping"),
            Key::DnsRecord(kind) => write!(f, "dns-record/{kind}"),
            Key::Retired(inner) => write!(f, "retired/{inner}"),
        }
    }
}

/// JSON output keeps the text form (`"function/push"`) it always had.
impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The routes and integrations of one API, as the run first read them.
#[derive(Debug, Default)]
pub struct ApiListing {
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
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
    /// The check, running beside the rest of `up`, that the API this run created is the one every
    /// concurrent run keeps; it answers the id of the kept API.
    race: Mutex<Option<tokio::task::JoinHandle<anyhow::Result<String>>>>,
    /// By key: what a resource read of itself while it waited for its prerequisites.
    looked_ahead: Mutex<BTreeMap<Key, Box<dyn Any + Send>>>,
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

    pub fn set_race(&self, check: tokio::task::JoinHandle<anyhow::Result<String>>) {
        *self.race.lock().expect("run state lock") = Some(check);
    }

    pub fn keep_look_ahead(&self, key: Key, observed: Box<dyn Any + Send>) {
        self.looked_ahead.lock().expect("run state lock").insert(key, observed);
    }

    /// What the resource of `key` read ahead, once.
    pub fn take_look_ahead(&self, key: &Key) -> Option<Box<dyn Any + Send>> {
        self.looked_ahead.lock().expect("run state lock").remove(key)
    }

    pub fn take_race(&self) -> Option<tokio::task::JoinHandle<anyhow::Result<String>>> {
        self.race.lock().expect("run state lock").take()
    }
}

/// Values of finished resources that others need, by the key of the resource that produced them.
/// Seeded before a run by discovery (`resources::api::discover`), extended by the engine as
/// resources finish; a resource only ever sees a read-only snapshot. Every snapshot shares the
/// run's `RunState`.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    values: BTreeMap<Key, String>,
    run: Arc<RunState>,
}

/// Equal when the values are: the run state is a cache, not a value.
impl PartialEq for Resolved {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Resolved {
    pub fn run(&self) -> &RunState {
        &self.run
    }

    pub fn get(&self, key: &Key) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub(crate) fn set(&mut self, key: Key, value: Option<String>) {
        match value {
            Some(value) => self.values.insert(key, value),
            None => self.values.remove(&key),
        };
    }

    /// The stack's WebSocket API id, once it exists.
    pub fn api_id(&self) -> Option<&str> {
        self.get(&Key::Api)
    }

    /// Whether an earlier `auth:` left something behind (the authorizer on `$connect`, or its
    /// function), which a stack file without `auth:` takes away.
    pub fn auth_left_behind(&self) -> bool {
        self.get(&Key::Authorizer).is_some() || self.get(&Key::Function(crate::names::AUTHORIZER.into())).is_some()
    }

    /// The handlers whose functions discovery found (the authorizer's, own routes').
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.values.keys().filter_map(|key| match key {
            Key::Function(handler) => Some(handler.as_str()),
            _ => None,
        })
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
        self.api_id().map(|id| api_url("https", id, aws, stage))
    }
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

    #[test]
    fn keys_print_as_before() {
        assert_eq!(Key::Function("push".into()).to_string(), "function/push");
        assert_eq!(Key::Role(RoleKind::Routes).to_string(), "role/routes");
        assert_eq!(
            Key::Route("subscribe".into()).retired().to_string(),
            "retired/route/subscribe"
        );
        assert_eq!(
            serde_json::to_value(Key::Queue(QueueKind::DeadLetter)).unwrap(),
            "queue/dead-letter"
        );
    }
}
