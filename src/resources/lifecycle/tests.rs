//! The shared lifecycle against a scripted in-process kind (no AWS): ownership, adoption after
//! "already exists", absent-on-delete, tagging only what differs.

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};

use super::*;
use crate::aws::Aws;
use crate::graph::{Value, Values};

#[derive(Clone)]
struct Seen {
    tags: Tags,
    size: u32,
}

/// Answers `observe` from a script, one answer per call, and writes down every other call.
struct Scripted {
    key: Key,
    after: Vec<Key>,
    tags: Tags,
    size: u32,
    adopts_untagged: bool,
    observations: Mutex<VecDeque<Option<Seen>>>,
    create: Created,
    calls: Mutex<Vec<String>>,
}

fn tags(stack: &str) -> Tags {
    [
        (TAG_STACK.to_string(), stack.to_string()),
        ("team".to_string(), "a".to_string()),
    ]
    .into_iter()
    .collect()
}

fn scripted(observations: Vec<Option<Seen>>, create: Created) -> Scripted {
    Scripted {
        key: Key::table(),
        after: Vec::new(),
        tags: tags("demo"),
        size: 2,
        adopts_untagged: false,
        observations: Mutex::new(observations.into()),
        create,
        calls: Mutex::new(Vec::new()),
    }
}

impl Scripted {
    fn called(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Lifecycle for Scripted {
    type Observed = Seen;

    fn id(&self) -> Id<'_> {
        Id::new("thing", self.key.clone(), "demo-dev-thing").tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        self.after.clone()
    }
    /// A queue's, in a region the offline clients have no credentials for: a write fails at once.
    fn tags_in_aws<'o>(&self, observed: &'o Seen) -> Option<(&'o Tags, TagsAt)> {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/demo-dev-thing";
        Some((&observed.tags, TagsAt::Sqs(url.into())))
    }
    fn adopts_untagged(&self) -> bool {
        self.adopts_untagged
    }
    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Seen>> {
        match ctx.resolved.api_id() {
            None => self.called("observe"),
            Some(api) => self.called(format!("observe with API {api}")),
        }
        Ok(self
            .observations
            .lock()
            .unwrap()
            .pop_front()
            .expect("an observation scripted"))
    }
    fn diffs(&self, _ctx: Ctx<'_>, observed: &Seen) -> Vec<Diff> {
        if observed.size == self.size {
            return Vec::new();
        }
        vec![Diff::new("size", observed.size, self.size)]
    }
    async fn create(&self, _ctx: Ctx<'_>) -> Result<Created> {
        self.called("create");
        Ok(self.create.clone())
    }
    async fn update(&self, _ctx: Ctx<'_>, _observed: &Seen) -> Result<()> {
        self.called("update");
        Ok(())
    }
    async fn delete(&self, _ctx: Ctx<'_>, _observed: Seen) -> Result<bool> {
        self.called("delete");
        Ok(true)
    }
    async fn settle_absent(&self, _ctx: Ctx<'_>) -> Result<()> {
        self.called("settle absent");
        Ok(())
    }
}

static AWS: LazyLock<Aws> = LazyLock::new(|| {
    let stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
    Aws::offline(crate::names::Names::new(&stack, "eu-west-1"))
});
static NOTHING_RESOLVED: LazyLock<Values> = LazyLock::new(Values::default);

fn ctx() -> Ctx<'static> {
    Ctx {
        aws: &AWS,
        resolved: &NOTHING_RESOLVED,
    }
}

fn seen(tags: Tags, size: u32) -> Option<Seen> {
    Some(Seen { tags, size })
}

#[tokio::test]
async fn a_foreign_resource_found_after_already_exists_is_refused_not_updated() {
    // The log group's old "already exists" path updated such a group without looking at its tags.
    let ctx = ctx();
    let thing = scripted(vec![None, seen(tags("other"), 1)], Created::AlreadyExists);
    let error = Resource::ensure(&thing, ctx).await.unwrap_err().to_string();
    assert!(error.contains("belongs to stack `other`, not `demo`"), "{error}");
    assert_eq!(thing.calls(), ["observe", "create", "observe"]);
}

#[tokio::test]
async fn our_resource_found_after_already_exists_is_converged() {
    let ctx = ctx();
    let thing = scripted(vec![None, seen(tags("demo"), 1)], Created::AlreadyExists);
    let done = Resource::ensure(&thing, ctx).await.unwrap();
    assert_eq!(done.change, Change::Updated(vec![Diff::new("size", 1, 2)]));
    assert_eq!(thing.calls(), ["observe", "create", "observe", "update"]);

    let vanished = scripted(vec![None, None], Created::AlreadyExists);
    assert!(Resource::ensure(&vanished, ctx).await.is_err());
}

#[tokio::test]
async fn tags_that_differ_go_to_where_the_kind_keeps_them_and_nothing_else_is_written() {
    let ctx = ctx();
    let mut current = tags("demo");
    current.insert("team".into(), "b".into());
    current.insert("old".into(), "x".into());
    let thing = scripted(
        vec![Some(Seen {
            tags: current.clone(),
            size: 2,
        })],
        Created::New(None),
    );
    assert_eq!(
        Resource::inspect(
            &scripted(vec![Some(Seen { tags: current, size: 2 })], Created::New(None)),
            ctx
        )
        .await
        .unwrap(),
        State::Drifted(vec![Diff::new(
            "tags",
            "{old=x, team=b, wsstack:stack=demo}",
            "{team=a, wsstack:stack=demo}"
        )])
    );
    // The write goes to the queue's tags (and fails: no credentials offline), never to `update`.
    let error = Resource::ensure(&thing, ctx).await.unwrap_err();
    assert!(
        format!("{error:#}").starts_with("tagging thing demo-dev-thing: "),
        "{error:#}"
    );
    // The SDK's own error is still there, for whoever must tell errors apart by type.
    let aws = error
        .downcast_ref::<crate::aws::AwsError>()
        .expect("an AWS call's error");
    type TagQueueError = aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::tag_queue::TagQueueError>;
    assert!(aws.sdk::<TagQueueError>().is_some(), "{aws:?}");
    assert_eq!(thing.calls(), ["observe"]);
}

#[tokio::test]
async fn destroy_skips_foreign_and_reports_absent() {
    let ctx = ctx();
    let foreign = scripted(vec![seen(Tags::new(), 2)], Created::New(None));
    let change = Resource::destroy(&foreign, ctx).await.unwrap();
    assert!(
        matches!(change, Change::Skipped(ref why) if why.contains("not tagged")),
        "{change:?}"
    );
    assert_eq!(foreign.calls(), ["observe"]);

    let absent = scripted(vec![None], Created::New(None));
    assert_eq!(Resource::destroy(&absent, ctx).await.unwrap(), Change::Absent);
    assert_eq!(absent.calls(), ["observe", "settle absent"]);

    let mut untagged = scripted(vec![seen(Tags::new(), 2), seen(Tags::new(), 2)], Created::New(None));
    untagged.adopts_untagged = true;
    assert_eq!(Resource::destroy(&untagged, ctx).await.unwrap(), Change::Deleted);
    assert!(matches!(
        Resource::inspect(&untagged, ctx).await.unwrap(),
        State::Drifted(_)
    ));
}

#[tokio::test]
async fn inspect_reports_foreign_missing_and_in_sync() {
    let ctx = ctx();
    let thing = scripted(
        vec![seen(tags("other"), 2), None, seen(tags("demo"), 2)],
        Created::New(None),
    );
    assert!(matches!(
        Resource::inspect(&thing, ctx).await.unwrap(),
        State::Foreign(_)
    ));
    assert_eq!(Resource::inspect(&thing, ctx).await.unwrap(), State::Missing);
    assert_eq!(Resource::inspect(&thing, ctx).await.unwrap(), State::InSync);
}

#[tokio::test]
async fn a_retired_resource_is_deleted_by_up_and_unwanted_in_status() {
    let ctx = ctx();
    let retired = Retired {
        inner: std::sync::Arc::new(scripted(
            vec![seen(tags("demo"), 2), seen(tags("demo"), 2), seen(tags("other"), 2)],
            Created::New(None),
        )),
        depends_on: vec![],
    };
    assert_eq!(retired.key(), Key::table().retired());
    assert_eq!(retired.inspect(ctx).await.unwrap(), State::Unwanted);
    assert_eq!(retired.ensure(ctx).await.unwrap().change, Change::Deleted);
    assert_eq!(retired.ensure(ctx).await.unwrap().change, Change::Unchanged);
}

/// An API that `up` creates, and a thing that depends on it, which reads itself (once) before the
/// API exists when the engine may read ahead, and in its turn otherwise.
async fn a_thing_after_a_new_api(limit: usize) -> (Vec<String>, Vec<crate::engine::Report>) {
    let new_api = Value::Api(crate::graph::ApiId {
        id: "api-1".into(),
        created_by_run: Some(None),
    });
    let api = Scripted {
        key: Key::api(),
        ..scripted(vec![None], Created::New(Some(new_api)))
    };
    let thing = std::sync::Arc::new(Scripted {
        after: vec![Key::api()],
        ..scripted(vec![seen(tags("demo"), 2)], Created::New(None))
    });
    let resources: Vec<std::sync::Arc<dyn Resource>> = vec![std::sync::Arc::new(api), thing.clone()];
    let mut resolved = Values::default();
    let progress = crate::progress::Progress::new(false);
    let verb = crate::engine::Verb::Ensure;
    let reports = crate::engine::run_bounded(&resources, &AWS, &mut resolved, verb, &progress, limit, &mut |_, _| {})
        .await
        .unwrap();
    (thing.calls(), reports)
}

#[tokio::test]
async fn a_resource_reads_itself_while_it_waits_and_works_from_that_look() {
    let (calls, reports) = a_thing_after_a_new_api(8).await;
    // One look, taken before the API existed (it saw no API id), and no second one in its turn.
    assert_eq!(calls, ["observe"]);
    assert!(!crate::engine::any_failed(&reports), "{reports:?}");
    // The one-at-a-time baseline reads nothing ahead: the one look is in its turn.
    let (calls, reports) = a_thing_after_a_new_api(1).await;
    assert_eq!(calls, ["observe with API api-1"]);
    assert!(!crate::engine::any_failed(&reports), "{reports:?}");
}
