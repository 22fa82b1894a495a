//! One module per AWS resource kind, each holding only that kind's AWS mapping (a `Lifecycle`);
//! `lifecycle` turns every mapping into the same `inspect` / `ensure` / `destroy`.
//!
//! This file holds what they share: the outcome types, the dyn `Resource` the engine runs, tag and
//! policy comparison. It makes no AWS call.

pub mod alarm;
pub mod api;
pub mod api_listing;
pub mod api_mapping;
pub mod authorizer;
pub mod certificate;
pub mod dns_record;
pub mod domain_name;
pub mod errors;
pub mod event_source;
pub mod function;
pub mod lifecycle;
pub mod log_group;
pub mod pages;
pub mod permission;
pub mod queue;
pub mod role;
pub mod role_policy;
pub mod route;
pub mod route_response;
pub mod rule;
pub mod secret;
pub mod stage;
pub mod table;
pub mod tagging;
pub mod topic;
pub mod transient;

use std::collections::BTreeMap;

use anyhow::Result;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::aws::Aws;
use crate::engine::{Turn, Verb};
use crate::graph::{self, Key, Values};
use crate::stack::TAG_STACK;

pub use lifecycle::{Created, Id, Lifecycle, Retired};

/// One field whose value in AWS differs from the stack file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub field: String,
    pub current: String,
    pub desired: String,
}

impl Diff {
    pub fn new(field: &str, current: impl ToString, desired: impl ToString) -> Diff {
        Diff {
            field: field.to_string(),
            current: current.to_string(),
            desired: desired.to_string(),
        }
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.current, self.desired)
    }
}

/// What `inspect` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", content = "details", rename_all = "snake_case")]
pub enum State {
    Missing,
    InSync,
    Drifted(Vec<Diff>),
    /// A resource with our name exists but is not tagged as this stack's: never touched.
    Foreign(String),
    /// Exists but the stack file no longer has it (e.g. a removed route): `up` deletes it.
    Unwanted,
}

impl State {
    /// In sync when nothing differs, drifted otherwise.
    pub fn from_diffs(diffs: Vec<Diff>) -> State {
        if diffs.is_empty() {
            State::InSync
        } else {
            State::Drifted(diffs)
        }
    }
}

/// What `ensure` or `destroy` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", content = "details", rename_all = "snake_case")]
pub enum Change {
    Created,
    Updated(Vec<Diff>),
    Unchanged,
    Deleted,
    /// `destroy` found nothing to delete.
    Absent,
    /// `destroy` left a resource alone because it is not this stack's.
    Skipped(String),
}

/// What a resource works with: the clients, and the values of the resources it depends on.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub aws: &'a Aws,
    pub resolved: &'a Values,
}

/// What `ensure` did, and the value it hands to its dependants (the API's id), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensured {
    pub change: Change,
    pub output: Option<graph::Value>,
}

/// What a resource did in its turn of a run.
#[derive(Debug)]
pub enum Done {
    Ensured(Ensured),
    Destroyed(Change),
    Inspected(State),
}

/// `verb`'s work on `resource`, with nothing read ahead.
pub async fn perform<R: Resource + ?Sized>(resource: &R, ctx: Ctx<'_>, verb: Verb) -> Result<Done> {
    Ok(match verb {
        Verb::Ensure => Done::Ensured(resource.ensure(ctx).await?),
        Verb::Destroy => Done::Destroyed(resource.destroy(ctx).await?),
        Verb::Inspect => Done::Inspected(resource.inspect(ctx).await?),
    })
}

/// A resource of the stack as the engine runs it. Every kind gets this from its `Lifecycle`;
/// only `Retired` and the engine's test fakes implement it by hand.
pub trait Resource: Send + Sync {
    /// Human kind, e.g. "SQS queue".
    fn kind(&self) -> &'static str;
    /// Physical name.
    fn name(&self) -> String;
    /// Unique key in the stack's graph.
    fn key(&self) -> Key;
    /// Keys of the resources that must exist before this one.
    fn depends_on(&self) -> Vec<Key>;
    /// Keys of the resources that may only be deleted once this one is gone (`down` runs these
    /// orders, not the reverse of `depends_on`: AWS needs fewer of them to take things down).
    fn gone_before(&self) -> Vec<Key> {
        self.depends_on()
    }
    /// The tags it is created with; `None` for kinds AWS keeps no tags on. Read by the plan's
    /// test that every tagged spec carries the stack's tags.
    #[cfg(test)]
    fn tags(&self) -> Option<&Tags>;
    fn inspect<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<State>>;
    fn ensure<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Ensured>>;
    fn destroy<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Change>>;
    /// The resource's turn in a run of `verb`: wait until its prerequisites are done (`None` when
    /// one failed: nothing to do), then work. A kind may read itself while it waits and start from
    /// that look (`Lifecycle` kinds do); by default nothing is read ahead.
    fn take_turn<'a>(&'a self, aws: &'a Aws, turn: Turn, verb: Verb) -> BoxFuture<'a, Option<Result<Done>>> {
        Box::pin(async move {
            let ready = turn.ready().await?;
            let ctx = Ctx {
                aws,
                resolved: &ready.resolved,
            };
            Some(perform(self, ctx, verb).await)
        })
    }
}

pub type Tags = BTreeMap<String, String>;

pub fn foreign_reason(kind: &str, name: &str, tags: &Tags, stack: &str) -> String {
    match tags.get(TAG_STACK) {
        Some(other) => format!("{kind} {name} belongs to stack `{other}`, not `{stack}`"),
        None => format!("{kind} {name} exists but is not tagged {TAG_STACK}={stack}; wsstack will not take it over"),
    }
}

/// The tags change needed: (to set, keys to remove).
pub fn tag_changes(current: &Tags, desired: &Tags) -> (Tags, Vec<String>) {
    let set: Tags = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = current.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
    (set, remove)
}

pub fn tag_diff(current: &Tags, desired: &Tags) -> Option<Diff> {
    if current == desired {
        None
    } else {
        Some(Diff::new("tags", format_tags(current), format_tags(desired)))
    }
}

fn format_tags(tags: &Tags) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A policy document in a canonical form, so that documents AWS hands back reformatted
/// (single values instead of one-element lists, other order) compare equal to ours.
pub fn canonical_policy(value: &Value) -> Value {
    const LISTY: &[&str] = &[
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Service",
        "AWS",
        "Statement",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = canonical_policy(v);
                    let v = match v {
                        Value::Array(_) => v,
                        other if LISTY.contains(&k.as_str()) => Value::Array(vec![other]),
                        other => other,
                    };
                    let v = match v {
                        Value::Array(mut items) => {
                            items.sort_by_key(|i| i.to_string());
                            Value::Array(items)
                        }
                        other => other,
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical_policy).collect()),
        other => other.clone(),
    }
}

/// Whether two policy documents (JSON text) mean the same. Text that is not JSON never matches,
/// so a mangled document shows as drift and `up` rewrites it.
pub fn same_policy(current: &str, desired: &Value) -> bool {
    match serde_json::from_str::<Value>(current) {
        Ok(current) => canonical_policy(&current) == canonical_policy(desired),
        Err(_) => false,
    }
}

/// Compact JSON for diffs.
pub fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_compare_semantically() {
        let desired = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:q"}]});
        assert!(same_policy(
            r#"{"Statement":{"Resource":["arn:q"],"Action":"sqs:SendMessage","Effect":"Allow"},"Version":"2012-10-17"}"#,
            &desired
        ));
        assert!(!same_policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"arn:q"}]}"#,
            &desired
        ));
    }

    #[test]
    fn text_that_is_not_json_never_matches() {
        let desired = json!({"Version": "2012-10-17", "Statement": []});
        assert!(!same_policy("not json", &desired));
        assert!(!same_policy("", &json!("")));
    }

    #[test]
    fn tag_changes_set_and_remove() {
        let current: Tags = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let desired: Tags = [("a", "1"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (set, remove) = tag_changes(&current, &desired);
        assert_eq!(set.len(), 1);
        assert_eq!(set["c"], "3");
        assert_eq!(remove, vec!["b".to_string()]);
        assert!(tag_diff(&current, &current).is_none());
    }
}
