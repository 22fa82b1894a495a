//! The one lifecycle every resource kind shares: `inspect`, `ensure` and `destroy` written once
//! over a `Lifecycle`, which holds only what differs per kind (how to observe, compare, create,
//! update, tag and delete it). No AWS call is made here; the mappings make them.

use std::future::Future;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use futures::future::BoxFuture;

use super::tagging::{self, TagsAt};
use super::{foreign_reason, tag_diff, Change, Ctx, Diff, Done, Ensured, Resource, State, Tags};
use crate::aws::Aws;
use crate::engine::{Turn, Verb};
use crate::graph::{Key, Value};
use crate::stack::TAG_STACK;

/// What a create call found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Made by this run; with the value dependants need (the API id), if any.
    New(Option<Value>),
    /// Someone else (a concurrent run, Lambda, an answer lost on the way) made it first: the
    /// lifecycle observes it again and converges it like any existing one, if it is ours.
    AlreadyExists,
}

/// Who a resource is: its human kind ("SQS queue"), its key in the stack's graph, its physical
/// name, and for a tagged kind the tags it is created with.
pub struct Id<'a> {
    pub kind: &'static str,
    pub key: Key,
    pub name: String,
    pub tags: Option<&'a Tags>,
}

impl Id<'static> {
    pub fn new(kind: &'static str, key: Key, name: impl Into<String>) -> Id<'static> {
        Id {
            kind,
            key,
            name: name.into(),
            tags: None,
        }
    }

    pub fn tagged(self, tags: &Tags) -> Id<'_> {
        Id {
            tags: Some(tags),
            ..self
        }
    }
}

/// One resource kind's AWS mapping.
///
/// Ownership. A tagged kind (tags in its `id` and `tags_in_aws` both `Some`) is this stack's when
/// its `wsstack:stack` tag is this stack's name (or, with `adopts_untagged`, when it has no tags at
/// all: the log group Lambda creates on a first invoke). Anything else under our name is foreign:
/// `ensure` refuses it, `destroy` skips it, `inspect` reports it. A kind AWS keeps no tags on
/// (route with its integration, permission, event source mapping; the stage, whose tags are
/// written once and never read back) answers `None` from `tags_in_aws`: it is ours by identity,
/// because `observe` only finds it inside something already ours (a route key or stage of our API,
/// our statement id on our function, a mapping from our queue to our function).
pub trait Lifecycle: Send + Sync {
    /// What `observe` reads of an existing resource.
    type Observed: Send + Sync + 'static;

    /// What it is, where it stands in the graph, its name, and the tags it is created with.
    fn id(&self) -> Id<'_>;
    fn depends_on(&self) -> Vec<Key> {
        Vec::new()
    }
    /// What may only be deleted once this one is gone; by default what it depends on (the
    /// reverse of the order of creation).
    fn gone_before(&self) -> Vec<Key> {
        self.depends_on()
    }
    /// The tags it has in AWS and where to write them (`tagging`); `None` for kinds whose tags are
    /// not read back.
    fn tags_in_aws<'o>(&self, _observed: &'o Self::Observed) -> Option<(&'o Tags, TagsAt)> {
        None
    }
    fn adopts_untagged(&self) -> bool {
        false
    }

    /// Read it; `None` when it does not exist. Only from AWS and the values of the run's start
    /// (the API id discovery found): unless `reads_ahead` says otherwise, `observe` may run before
    /// the resource's prerequisites are done (`Resource::take_turn`), and nothing they do may
    /// change what it reads.
    fn observe(&self, ctx: Ctx<'_>) -> impl Future<Output = Result<Option<Self::Observed>>> + Send;
    /// Whether `observe` may run before the resource's prerequisites are done. A kind whose
    /// `observe` needs a value one of them hands on (not one discovery found) says `false`.
    fn reads_ahead(&self) -> bool {
        true
    }
    /// How it differs from the spec, tags aside (the lifecycle compares those).
    fn diffs(&self, ctx: Ctx<'_>, observed: &Self::Observed) -> Vec<Diff>;
    /// The value it hands to its dependants.
    fn output(&self, _observed: &Self::Observed) -> Option<Value> {
        None
    }
    /// Create it, and wait until it is usable where the service needs that.
    fn create(&self, ctx: Ctx<'_>) -> impl Future<Output = Result<Created>> + Send;
    /// Bring an existing one in line with the spec; called when `diffs` found something.
    fn update(&self, ctx: Ctx<'_>, observed: &Self::Observed) -> impl Future<Output = Result<()>> + Send;
    /// Delete it: `true` when deleted now, `false` when it was already gone.
    fn delete(&self, ctx: Ctx<'_>, observed: Self::Observed) -> impl Future<Output = Result<bool>> + Send;
    /// Called by `ensure` once the resource exists as the spec says, whether it was changed or
    /// not, for a kind that must wait on what other resources of the run did (the stage: the
    /// deployment of the run's changes to its API).
    fn settle(&self, _ctx: Ctx<'_>, _observed: &Self::Observed) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
    /// Called by `destroy` when there is nothing to delete, for a kind that can be on its way out
    /// (a table still DELETING) and must be gone before `destroy` reports it absent.
    fn settle_absent(&self, _ctx: Ctx<'_>) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Why an observed resource is not this stack's, if it is not.
fn foreign<T: Lifecycle>(resource: &T, observed: &T::Observed) -> Option<String> {
    let (current, _) = resource.tags_in_aws(observed)?;
    let id = resource.id();
    let stack = id
        .tags
        .and_then(|t| t.get(TAG_STACK))
        .map(String::as_str)
        .unwrap_or_default();
    let ours =
        current.get(TAG_STACK).map(String::as_str) == Some(stack) || (resource.adopts_untagged() && current.is_empty());
    (!ours).then(|| foreign_reason(id.kind, &id.name, current, stack))
}

fn all_diffs<T: Lifecycle>(resource: &T, ctx: Ctx<'_>, observed: &T::Observed) -> Vec<Diff> {
    let mut diffs = resource.diffs(ctx, observed);
    if let (Some((current, _)), Some(desired)) = (resource.tags_in_aws(observed), resource.id().tags) {
        diffs.extend(tag_diff(current, desired));
    }
    diffs
}

async fn inspect<T: Lifecycle>(resource: &T, ctx: Ctx<'_>) -> Result<State> {
    Ok(match resource.observe(ctx).await? {
        None => State::Missing,
        Some(observed) => match foreign(resource, &observed) {
            Some(reason) => State::Foreign(reason),
            None => State::from_diffs(all_diffs(resource, ctx, &observed)),
        },
    })
}

/// The look taken ahead of the resource's turn (`seen`), if any; else a new one.
async fn read_ahead_or_observe<T: Lifecycle>(
    resource: &T,
    ctx: Ctx<'_>,
    seen: Option<Option<T::Observed>>,
) -> Result<Option<T::Observed>> {
    match seen {
        Some(observed) => Ok(observed),
        None => resource.observe(ctx).await,
    }
}

/// A resource's turn: while its prerequisites are not done, it reads itself from the values the
/// run started with (when `reads_ahead` allows), then works from that look.
async fn take_turn<T: Lifecycle>(resource: &T, aws: &Aws, mut turn: Turn, verb: Verb) -> Option<Result<Done>> {
    let seen = if resource.reads_ahead() && verb != Verb::Inspect && turn.may_read_ahead() {
        let _slot = turn.slot().await;
        let early = Ctx {
            aws,
            resolved: turn.early(),
        };
        // A failed look is not kept: the resource reads again when its turn comes.
        resource.observe(early).await.ok()
    } else {
        None
    };
    let ready = turn.ready().await?;
    let ctx = Ctx {
        aws,
        resolved: &ready.resolved,
    };
    Some(match verb {
        Verb::Ensure => ensure(resource, ctx, seen).await.map(Done::Ensured),
        Verb::Destroy => destroy(resource, ctx, seen).await.map(Done::Destroyed),
        Verb::Inspect => inspect(resource, ctx).await.map(Done::Inspected),
    })
}

async fn ensure<T: Lifecycle>(resource: &T, ctx: Ctx<'_>, seen: Option<Option<T::Observed>>) -> Result<Ensured> {
    let observed = match read_ahead_or_observe(resource, ctx, seen).await? {
        Some(observed) => observed,
        None => match resource.create(ctx).await? {
            Created::New(output) => {
                return Ok(Ensured {
                    change: Change::Created,
                    output,
                })
            }
            Created::AlreadyExists => resource.observe(ctx).await?.ok_or_else(|| {
                anyhow!(
                    "{} {} already exists and yet cannot be read: run again",
                    resource.kind(),
                    resource.name()
                )
            })?,
        },
    };
    if let Some(reason) = foreign(resource, &observed) {
        bail!(reason);
    }
    let output = resource.output(&observed);
    let diffs = all_diffs(resource, ctx, &observed);
    if diffs.is_empty() {
        resource.settle(ctx, &observed).await?;
        return Ok(Ensured {
            change: Change::Unchanged,
            output,
        });
    }
    if !resource.diffs(ctx, &observed).is_empty() {
        resource.update(ctx, &observed).await?;
    }
    let id = resource.id();
    if let (Some((current, at)), Some(desired)) = (resource.tags_in_aws(&observed), id.tags) {
        let what = format!("{} {}", id.kind, id.name);
        tagging::retag(ctx.aws, &at, current, desired, &what).await?;
    }
    resource.settle(ctx, &observed).await?;
    Ok(Ensured {
        change: Change::Updated(diffs),
        output,
    })
}

async fn destroy<T: Lifecycle>(resource: &T, ctx: Ctx<'_>, seen: Option<Option<T::Observed>>) -> Result<Change> {
    let Some(observed) = read_ahead_or_observe(resource, ctx, seen).await? else {
        resource.settle_absent(ctx).await?;
        return Ok(Change::Absent);
    };
    if let Some(reason) = foreign(resource, &observed) {
        return Ok(Change::Skipped(reason));
    }
    Ok(if resource.delete(ctx, observed).await? {
        Change::Deleted
    } else {
        Change::Absent
    })
}

impl<T: Lifecycle> Resource for T {
    fn kind(&self) -> &'static str {
        self.id().kind
    }
    fn name(&self) -> String {
        self.id().name
    }
    fn key(&self) -> Key {
        self.id().key
    }
    fn depends_on(&self) -> Vec<Key> {
        Lifecycle::depends_on(self)
    }
    fn gone_before(&self) -> Vec<Key> {
        Lifecycle::gone_before(self)
    }
    #[cfg(test)]
    fn tags(&self) -> Option<&Tags> {
        self.id().tags
    }
    fn inspect<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<State>> {
        Box::pin(inspect(self, ctx))
    }
    fn ensure<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Ensured>> {
        Box::pin(ensure(self, ctx, None))
    }
    fn destroy<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Change>> {
        Box::pin(destroy(self, ctx, None))
    }
    fn take_turn<'a>(&'a self, aws: &'a Aws, turn: Turn, verb: Verb) -> BoxFuture<'a, Option<Result<Done>>> {
        Box::pin(take_turn(self, aws, turn, verb))
    }
}

/// A resource the stack file no longer declares (a route taken out of `routes`, with its function,
/// permission and log group): `up` deletes it if it exists, `status` reports it as unwanted.
pub struct Retired {
    pub inner: Arc<dyn Resource>,
    pub depends_on: Vec<Key>,
}

impl Resource for Retired {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn key(&self) -> Key {
        self.inner.key().retired()
    }
    fn depends_on(&self) -> Vec<Key> {
        self.depends_on.clone()
    }
    #[cfg(test)]
    fn tags(&self) -> Option<&Tags> {
        self.inner.tags()
    }
    fn inspect<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<State>> {
        Box::pin(async move {
            Ok(match self.inner.inspect(ctx).await? {
                State::Missing | State::Foreign(_) => State::InSync,
                State::InSync | State::Drifted(_) | State::Unwanted => State::Unwanted,
            })
        })
    }
    fn ensure<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Ensured>> {
        Box::pin(async move {
            let change = match self.inner.destroy(ctx).await? {
                Change::Deleted => Change::Deleted,
                _ => Change::Unchanged,
            };
            Ok(Ensured { change, output: None })
        })
    }
    fn destroy<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Change>> {
        self.inner.destroy(ctx)
    }
}

#[cfg(test)]
mod tests;
