//! The engine against in-process fake resources (no AWS): order, failure propagation, reverse
//! destroy, the concurrency bound, graph errors and values handed from one resource to another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures::future::BoxFuture;

use super::*;
use crate::graph::{ApiId, Value};
use crate::resources::{Ctx, Ensured, Tags};

/// (key, the API id it saw).
type SeenApi = (String, Option<String>);

/// What the fakes did, in the order they did it: "start x", "end x".
#[derive(Clone, Default)]
struct Journal {
    events: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// The API id each fake saw when it ran, by key.
    seen: Arc<Mutex<Vec<SeenApi>>>,
}

impl Journal {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn position(&self, event: &str) -> usize {
        let events = self.events();
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no `{event}` in {events:?}"))
    }
}

struct Fake {
    key: Key,
    depends_on: Vec<Key>,
    /// What may only go once this one is gone, when not the reverse of `depends_on`.
    gone_before: Option<Vec<Key>>,
    fails: bool,
    output: Option<Value>,
    journal: Journal,
}

fn fake(journal: &Journal, key: Key, depends_on: Vec<Key>) -> Arc<dyn Resource> {
    Arc::new(Fake {
        key,
        depends_on,
        gone_before: None,
        fails: false,
        output: None,
        journal: journal.clone(),
    })
}

/// A fake whose destroy order is its own.
fn tearing_down(
    journal: &Journal,
    key: Key,
    depends_on: Vec<Key>,
    gone_before: Vec<Key>,
    fails: bool,
) -> Arc<dyn Resource> {
    Arc::new(Fake {
        key,
        depends_on,
        gone_before: Some(gone_before),
        fails,
        output: None,
        journal: journal.clone(),
    })
}

fn failing(journal: &Journal, key: Key, depends_on: Vec<Key>) -> Arc<dyn Resource> {
    Arc::new(Fake {
        key,
        depends_on,
        gone_before: None,
        fails: true,
        output: None,
        journal: journal.clone(),
    })
}

impl Fake {
    async fn work(&self, ctx: Ctx<'_>) -> Result<()> {
        let j = &self.journal;
        j.events.lock().unwrap().push(format!("start {}", self.key));
        j.seen
            .lock()
            .unwrap()
            .push((self.key.to_string(), ctx.resolved.api_id().map(String::from)));
        let now = j.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        j.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        j.in_flight.fetch_sub(1, Ordering::SeqCst);
        j.events.lock().unwrap().push(format!("end {}", self.key));
        if self.fails {
            return Err(anyhow!("{} broke", self.key));
        }
        Ok(())
    }
}

impl Resource for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn name(&self) -> String {
        self.key.to_string()
    }
    fn key(&self) -> Key {
        self.key.clone()
    }
    fn depends_on(&self) -> Vec<Key> {
        self.depends_on.clone()
    }
    fn gone_before(&self) -> Vec<Key> {
        self.gone_before.clone().unwrap_or_else(|| self.depends_on.clone())
    }
    fn tags(&self) -> Option<&Tags> {
        None
    }
    fn inspect<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<State>> {
        Box::pin(async move { self.work(ctx).await.map(|_| State::InSync) })
    }
    fn ensure<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Ensured>> {
        Box::pin(async move {
            self.work(ctx).await?;
            Ok(Ensured {
                change: Change::Created,
                output: self.output.clone(),
            })
        })
    }
    fn destroy<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, Result<Change>> {
        Box::pin(async move { self.work(ctx).await.map(|_| Change::Deleted) })
    }
}

fn aws() -> Aws {
    let stack = crate::stack::parse(std::path::Path::new("s.yaml"), "name: demo\n").unwrap();
    Aws::offline(crate::names::Names::new(&stack, "eu-west-1"))
}

async fn go(resources: &[Arc<dyn Resource>], verb: Verb, limit: usize) -> (Vec<Report>, Values) {
    let mut resolved = Values::default();
    let reports = run_bounded(
        resources,
        &aws(),
        &mut resolved,
        verb,
        &Progress::new(false),
        limit,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    (reports, resolved)
}

fn function(name: &str) -> Key {
    Key::function(name)
}

#[tokio::test]
async fn ensure_starts_each_resource_after_what_it_depends_on() {
    let j = Journal::default();
    // Listed dependants first, so the slice order is not what makes it pass.
    let resources = vec![
        fake(&j, Key::stage(), vec![Key::route("a"), Key::route("b")]),
        fake(&j, Key::route("a"), vec![function("a")]),
        fake(&j, Key::route("b"), vec![function("b")]),
        fake(&j, function("a"), vec![Key::api()]),
        fake(&j, function("b"), vec![Key::api()]),
        fake(&j, Key::api(), vec![]),
    ];
    let (reports, _) = go(&resources, Verb::Ensure, 8).await;
    assert_eq!(reports.len(), 6);
    for r in &resources {
        for dep in r.depends_on() {
            assert!(
                j.position(&format!("end {dep}")) < j.position(&format!("start {}", r.key())),
                "{} started before {dep} ended: {:?}",
                r.key(),
                j.events()
            );
        }
    }
    assert!(reports
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Changed(Change::Created))));
}

#[tokio::test]
async fn a_failure_leaves_its_dependants_not_attempted_and_the_rest_running() {
    let j = Journal::default();
    let resources = vec![
        failing(&j, Key::api(), vec![]),
        fake(&j, function("a"), vec![Key::api()]),
        fake(&j, Key::route("a"), vec![function("a")]),
        fake(&j, Key::table(), vec![]),
        fake(&j, Key::rule(), vec![Key::table()]),
    ];
    let (reports, _) = go(&resources, Verb::Ensure, 8).await;
    let outcome = |key: Key| &reports.iter().find(|r| r.key == key).unwrap().outcome;
    assert!(matches!(outcome(Key::api()), Outcome::Failed(e) if e.contains("api broke")));
    assert!(matches!(outcome(function("a")), Outcome::NotAttempted(why) if why.contains("api")));
    assert!(matches!(outcome(Key::route("a")), Outcome::NotAttempted(_)));
    assert!(matches!(outcome(Key::table()), Outcome::Changed(Change::Created)));
    assert!(matches!(outcome(Key::rule()), Outcome::Changed(Change::Created)));
    let events = j.events();
    assert!(
        !events.iter().any(|e| e.contains("function/a") || e.contains("route/a")),
        "{events:?}"
    );
    assert!(any_failed(&reports));
}

#[tokio::test]
async fn destroy_runs_in_reverse_dependency_order() {
    let j = Journal::default();
    let resources = vec![
        fake(&j, Key::api(), vec![]),
        fake(&j, function("a"), vec![Key::api()]),
        fake(&j, Key::route("a"), vec![function("a")]),
    ];
    let (reports, _) = go(&resources, Verb::Destroy, 8).await;
    assert!(j.position("end route/a") < j.position("start function/a"));
    assert!(j.position("end function/a") < j.position("start api"));
    let keys: Vec<String> = reports.iter().map(|r| r.key.to_string()).collect();
    assert_eq!(keys, ["route/a", "function/a", "api"]);
}

#[tokio::test]
async fn destroy_waits_only_for_what_must_go_first() {
    let role = Key::role(crate::names::RoleKind::Routes);
    let log_group = Key::log_group("a");
    for function_fails in [false, true] {
        let j = Journal::default();
        // The function needs its role and the API to be made, but only its log group must wait
        // for it to go; its permission still goes before it.
        let resources = vec![
            fake(&j, Key::api(), vec![]),
            fake(&j, role.clone(), vec![]),
            tearing_down(&j, log_group.clone(), vec![], vec![], false),
            tearing_down(
                &j,
                function("a"),
                vec![role.clone(), Key::api()],
                vec![log_group.clone()],
                function_fails,
            ),
            fake(&j, Key::permission("a"), vec![function("a")]),
        ];
        let (reports, _) = go(&resources, Verb::Destroy, 8).await;
        assert_eq!(reports.len(), 5, "every resource has an outcome");
        assert!(j.position("end permission/a") < j.position("start function/a"));
        assert!(
            j.position("start role/routes") < j.position("end function/a"),
            "{:?}",
            j.events()
        );
        assert!(
            j.position("start api") < j.position("end function/a"),
            "{:?}",
            j.events()
        );
        let outcome = |key: &Key| &reports.iter().find(|r| &r.key == key).unwrap().outcome;
        if function_fails {
            assert!(matches!(outcome(&log_group), Outcome::NotAttempted(_)));
            assert!(matches!(outcome(&role), Outcome::Changed(Change::Deleted)));
        } else {
            assert!(j.position("end function/a") < j.position("start log-group/a"));
        }
    }
}

#[tokio::test]
async fn a_failed_destroy_keeps_what_it_depends_on() {
    let j = Journal::default();
    let resources = vec![
        fake(&j, Key::api(), vec![]),
        failing(&j, function("a"), vec![Key::api()]),
    ];
    let (reports, _) = go(&resources, Verb::Destroy, 8).await;
    assert!(matches!(reports[1].outcome, Outcome::NotAttempted(_)));
    assert!(!j.events().contains(&"start api".to_string()));
}

#[tokio::test]
async fn concurrency_never_exceeds_its_bound() {
    let j = Journal::default();
    let resources: Vec<Arc<dyn Resource>> = (0..12).map(|i| fake(&j, function(&i.to_string()), vec![])).collect();
    let (reports, _) = go(&resources, Verb::Inspect, 3).await;
    assert_eq!(reports.len(), 12);
    assert_eq!(j.most_in_flight.load(Ordering::SeqCst), 3);
    let j = Journal::default();
    let resources: Vec<Arc<dyn Resource>> = (0..4).map(|i| fake(&j, function(&i.to_string()), vec![])).collect();
    go(&resources, Verb::Ensure, 1).await;
    assert_eq!(j.most_in_flight.load(Ordering::SeqCst), 1);
}

#[test]
fn a_cycle_or_an_unknown_dependency_is_an_error() {
    let j = Journal::default();
    let cycle = vec![
        fake(&j, Key::api(), vec![Key::stage()]),
        fake(&j, Key::stage(), vec![Key::api()]),
        fake(&j, Key::table(), vec![]),
    ];
    let error = order(&cycle).unwrap_err().to_string();
    assert!(
        error.contains("cycle") && error.contains("api") && !error.contains("table"),
        "{error}"
    );
    let unknown = vec![fake(&j, Key::stage(), vec![Key::api()])];
    let error = order(&unknown).unwrap_err().to_string();
    assert!(error.contains("stage depends on unknown api"), "{error}");
    let twice = vec![fake(&j, Key::api(), vec![]), fake(&j, Key::api(), vec![])];
    assert!(order(&twice).is_err());
}

#[tokio::test]
async fn a_value_from_a_finished_resource_reaches_its_dependants() {
    let j = Journal::default();
    let resources: Vec<Arc<dyn Resource>> = vec![
        Arc::new(Fake {
            key: Key::api(),
            depends_on: vec![],
            gone_before: None,
            fails: false,
            output: Some(Value::Api(ApiId {
                id: "api-1".into(),
                created_by_run: None,
            })),
            journal: j.clone(),
        }),
        fake(&j, Key::stage(), vec![Key::api()]),
    ];
    let mut resolved = Values::default();
    let mut handed_on = Vec::new();
    let mut on_value = |key: &Key, value: &Value| handed_on.push((key.to_string(), value.clone()));
    run_bounded(
        &resources,
        &aws(),
        &mut resolved,
        Verb::Ensure,
        &Progress::new(false),
        8,
        &mut on_value,
    )
    .await
    .unwrap();
    assert_eq!(resolved.api_id(), Some("api-1"));
    // As it finished, the API's value went to whoever watches the run (`up`'s race check).
    assert_eq!(handed_on.len(), 1, "{handed_on:?}");
    assert_eq!(handed_on[0].0, "api");
    assert_eq!(
        resolved.api(),
        match &handed_on[0].1 {
            Value::Api(api) => Some(api),
            other => panic!("{other:?}"),
        }
    );
    let seen = j.seen.lock().unwrap().clone();
    assert!(seen.contains(&("api".to_string(), None)), "{seen:?}");
    assert!(
        seen.contains(&("stage".to_string(), Some("api-1".to_string()))),
        "{seen:?}"
    );

    // `down` forgets the id of the API it deleted.
    let mut resolved = resolved;
    run_bounded(
        &resources,
        &aws(),
        &mut resolved,
        Verb::Destroy,
        &Progress::new(false),
        8,
        &mut |key, value| panic!("down hands on nothing, yet {key} gave {value:?}"),
    )
    .await
    .unwrap();
    assert_eq!(resolved.api_id(), None);
}
