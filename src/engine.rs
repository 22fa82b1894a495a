//! The dependency graph of a stack's resources, walked with bounded concurrency.
//!
//! `up` runs `ensure` in dependency order, `down` runs `destroy` in the order `gone_before` gives
//! (by default the reverse), `status` runs `inspect` on everything at once. A resource waiting for
//! its prerequisites reads itself meanwhile (`Turn`). A resource whose prerequisite failed is not
//! attempted; the others still run, so one failure does not hide the state of the rest.
//!
//! Each resource's work is a task of its own on the runtime's worker threads: a call that keeps a
//! thread busy (CreateFunction builds and signs a body of several megabytes, about 250 ms in a debug
//! build) does not hold back the other resources, as it did while every future was polled in one
//! task. The run owns its tasks: when it ends or is dropped, none is left behind.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::task::JoinSet;

use crate::aws::Aws;
use crate::graph::{Key, Value, Values};
use crate::progress::Progress;
use crate::resources::{Change, Done, Resource, State};

/// How many resources are worked on at once, unless `WSSTACK_MAX_CONCURRENCY` says otherwise
/// (1 gives the sequential baseline the benchmarks compare against, without reading ahead). Every
/// resource of the shipped stack (41) can read itself at once; one with `auth:` and `domain:` (53)
/// waits for a slot here and there. Below that, the last few resources' reads queue behind the
/// first ones and add a round trip to a no-op `up` (`tests/critical_path.rs`). The SDK retries a
/// throttled call.
const CONCURRENCY: usize = 48;

fn concurrency() -> usize {
    std::env::var("WSSTACK_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CONCURRENCY)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Ensure,
    Destroy,
    Inspect,
}

/// What happened to one resource.
#[derive(Debug, Clone)]
pub enum Outcome {
    Changed(Change),
    Inspected(State),
    Failed(String),
    /// Not attempted because a prerequisite failed.
    NotAttempted(String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub key: Key,
    pub kind: &'static str,
    pub name: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Check the graph: every key is unique, every dependency exists, no cycles. Returns the indexes
/// of `resources` in an order where each comes after what it depends on.
pub fn order(resources: &[Arc<dyn Resource>]) -> Result<Vec<usize>> {
    let index = index(resources)?;
    let deps = edges(resources, &index, |r| r.depends_on(), "depends on")?;
    topological(resources, &deps)
}

fn index(resources: &[Arc<dyn Resource>]) -> Result<BTreeMap<Key, usize>> {
    let mut index: BTreeMap<Key, usize> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        if index.insert(r.key(), i).is_some() {
            bail!("internal: two resources have the key {}", r.key());
        }
    }
    Ok(index)
}

/// For each resource, the indexes `keys` names.
fn edges(
    resources: &[Arc<dyn Resource>],
    index: &BTreeMap<Key, usize>,
    keys: impl Fn(&dyn Resource) -> Vec<Key>,
    relation: &str,
) -> Result<Vec<Vec<usize>>> {
    let mut edges = Vec::with_capacity(resources.len());
    for r in resources {
        let mut these = Vec::new();
        for key in keys(r.as_ref()) {
            match index.get(&key) {
                Some(i) => these.push(*i),
                None => bail!("internal: {} {relation} unknown {key}", r.key()),
            }
        }
        edges.push(these);
    }
    Ok(edges)
}

/// An order in which each index comes after its `prerequisites`.
fn topological(resources: &[Arc<dyn Resource>], prerequisites: &[Vec<usize>]) -> Result<Vec<usize>> {
    let mut placed = vec![false; resources.len()];
    let mut ordered = Vec::with_capacity(resources.len());
    while ordered.len() < resources.len() {
        let before = ordered.len();
        for i in 0..resources.len() {
            if !placed[i] && prerequisites[i].iter().all(|d| placed[*d]) {
                placed[i] = true;
                ordered.push(i);
            }
        }
        if ordered.len() == before {
            let stuck: Vec<String> = (0..resources.len())
                .filter(|i| !placed[*i])
                .map(|i| resources[i].key().to_string())
                .collect();
            bail!("internal: dependency cycle among {}", stuck.join(", "));
        }
    }
    Ok(ordered)
}

/// Run `verb` over every resource, respecting dependencies (`gone_before` for `Destroy`). `resolved`
/// comes in with what discovery found and goes out with what the run produced (the id of an API
/// it created; none for one it deleted).
pub async fn run(
    resources: &[Arc<dyn Resource>],
    aws: &Aws,
    resolved: &mut Values,
    verb: Verb,
    progress: &Progress,
) -> Result<Vec<Report>> {
    run_watching(resources, aws, resolved, verb, progress, &mut |_, _| {}).await
}

/// `run`, calling `on_value` with each value a resource hands on as it finishes (the API id the
/// run created: `up` starts its race check then).
pub async fn run_watching(
    resources: &[Arc<dyn Resource>],
    aws: &Aws,
    resolved: &mut Values,
    verb: Verb,
    progress: &Progress,
    on_value: &mut dyn FnMut(&Key, &Value),
) -> Result<Vec<Report>> {
    run_bounded(resources, aws, resolved, verb, progress, concurrency(), on_value).await
}

pub(crate) async fn run_bounded(
    resources: &[Arc<dyn Resource>],
    aws: &Aws,
    resolved: &mut Values,
    verb: Verb,
    progress: &Progress,
    limit: usize,
    on_value: &mut dyn FnMut(&Key, &Value),
) -> Result<Vec<Report>> {
    // Reports come in graph order (reversed for destroy), so output reads like the plan.
    let mut ordered = order(resources)?;
    if verb == Verb::Destroy {
        ordered.reverse();
    }
    // prerequisites[i] = indexes that must finish successfully before i starts.
    let index = index(resources)?;
    let prerequisites: Vec<Vec<usize>> = match verb {
        Verb::Ensure => edges(resources, &index, |r| r.depends_on(), "depends on")?,
        Verb::Destroy => {
            let mut prerequisites = vec![Vec::new(); resources.len()];
            let later = edges(resources, &index, |r| r.gone_before(), "goes before")?;
            for (i, later) in later.into_iter().enumerate() {
                for l in later {
                    prerequisites[l].push(i);
                }
            }
            prerequisites
        }
        Verb::Inspect => vec![Vec::new(); resources.len()],
    };
    // Released in an order where each comes after its prerequisites, so that a resource whose
    // prerequisite was just marked is itself marked in the same pass.
    let starting = topological(resources, &prerequisites)?;

    // Every resource's turn is a task from the start: while its prerequisites are not done it may
    // read itself (not in the one-at-a-time baseline); what it depends on never changes what it
    // reads, so its work then starts from that look instead of a round trip of its own. Looks and
    // work alike take one of `limit` slots.
    let turns = Turns {
        slots: Arc::new(Semaphore::new(limit)),
        early: resolved.clone(),
        reads_ahead: verb != Verb::Inspect && limit > 1,
    };
    // The tasks hold their own handles on the clients and the resources.
    let aws = Arc::new(aws.clone());
    let mut running: JoinSet<(usize, Option<Result<Done>>, Duration)> = JoinSet::new();
    let mut waiting: Vec<Option<oneshot::Sender<Values>>> = Vec::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        let (turn, release) = turns.turn();
        waiting.push(Some(release));
        let (r, aws) = (r.clone(), aws.clone());
        running.spawn(async move {
            let started = turn.started.clone();
            let done = r.take_turn(&aws, turn, verb).await;
            let elapsed = started.get().map(Instant::elapsed).unwrap_or_default();
            (i, done, elapsed)
        });
    }

    let mut outcomes: Vec<Option<Report>> = vec![None; resources.len()];
    loop {
        // Release what is ready, and mark what can never run.
        for &i in &starting {
            if waiting[i].is_none() {
                continue;
            }
            let r = &resources[i];
            let failed = prerequisites[i]
                .iter()
                .find(|p| outcomes[**p].as_ref().is_some_and(|rep| !succeeded(&rep.outcome)));
            if let Some(&p) = failed {
                // Its task learns that nothing is coming, and ends.
                waiting[i] = None;
                let reason = format!("{} did not succeed", resources[p].name());
                let outcome = Outcome::NotAttempted(reason);
                progress.finish(r.kind(), &r.name(), &outcome);
                outcomes[i] = Some(report(r.as_ref(), outcome, Duration::ZERO));
                continue;
            }
            if prerequisites[i].iter().all(|p| outcomes[*p].is_some()) {
                progress.start(r.kind(), &r.name(), verb);
                // Each resource sees the values resolved when it is released, read-only.
                if let Some(release) = waiting[i].take() {
                    let _ = release.send(resolved.clone());
                }
            }
        }
        // With cycles excluded by `order`, an empty set here means every resource has an outcome.
        let Some(finished) = running.join_next().await else {
            break;
        };
        // A task that panicked takes the run down as the panic would have in one task.
        let (i, done, elapsed) = finished.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        // A turn that never came (a prerequisite failed) is reported already.
        let Some(done) = done else { continue };
        let (outcome, output) = match done {
            Ok(Done::Ensured(ensured)) => (Outcome::Changed(ensured.change), ensured.output),
            Ok(Done::Destroyed(change)) => (Outcome::Changed(change), None),
            Ok(Done::Inspected(state)) => (Outcome::Inspected(state), None),
            Err(e) => (Outcome::Failed(format!("{e:#}")), None),
        };
        let report = report(resources[i].as_ref(), outcome, elapsed);
        progress.finish(report.kind, &report.name, &report.outcome);
        match (&report.outcome, output) {
            (Outcome::Changed(Change::Deleted), _) if verb == Verb::Destroy => resolved.set(report.key.clone(), None),
            (Outcome::Changed(_), Some(value)) => {
                on_value(&report.key, &value);
                resolved.set(report.key.clone(), Some(value));
            }
            _ => {}
        }
        outcomes[i] = Some(report);
    }
    Ok(ordered.into_iter().filter_map(|i| outcomes[i].take()).collect())
}

/// What every turn of one run shares.
struct Turns {
    slots: Arc<Semaphore>,
    early: Values,
    reads_ahead: bool,
}

impl Turns {
    /// A resource's turn, and the sender that releases it.
    fn turn(&self) -> (Turn, oneshot::Sender<Values>) {
        let (release, ready) = oneshot::channel();
        let turn = Turn {
            early: self.early.clone(),
            ready,
            arrived: None,
            slots: self.slots.clone(),
            reads_ahead: self.reads_ahead,
            started: Arc::new(OnceLock::new()),
        };
        (turn, release)
    }
}

/// One resource's turn in a run: the values its finished prerequisites handed on, once they are
/// all done, and one of the run's bounded slots to work in.
pub struct Turn {
    /// The values the run started with (what discovery found).
    early: Values,
    ready: oneshot::Receiver<Values>,
    /// The values, when they came while the resource asked whether to read ahead.
    arrived: Option<Values>,
    slots: Arc<Semaphore>,
    reads_ahead: bool,
    /// When the work began, for the report.
    started: Arc<OnceLock<Instant>>,
}

/// A turn that came: the values to work with, and the slot held while working.
pub struct Ready {
    pub resolved: Values,
    _slot: OwnedSemaphorePermit,
}

impl Turn {
    /// Whether the resource may read itself now: reading ahead is on (not for `status`, not in the
    /// one-at-a-time baseline) and its prerequisites are not done yet.
    pub fn may_read_ahead(&mut self) -> bool {
        if !self.reads_ahead || self.arrived.is_some() {
            return false;
        }
        match self.ready.try_recv() {
            Ok(resolved) => {
                self.arrived = Some(resolved);
                false
            }
            Err(oneshot::error::TryRecvError::Empty) => true,
            Err(oneshot::error::TryRecvError::Closed) => false,
        }
    }

    /// The values the run started with, for a look ahead.
    pub fn early(&self) -> &Values {
        &self.early
    }

    /// A slot for a look ahead.
    pub async fn slot(&self) -> SemaphorePermit<'_> {
        self.slots.acquire().await.expect("the run's slots are never closed")
    }

    /// Wait until the prerequisites are done and a slot is free; `None` when a prerequisite failed.
    pub async fn ready(self) -> Option<Ready> {
        let resolved = match self.arrived {
            Some(resolved) => resolved,
            None => self.ready.await.ok()?,
        };
        let slot = self
            .slots
            .acquire_owned()
            .await
            .expect("the run's slots are never closed");
        let _ = self.started.set(Instant::now());
        Some(Ready { resolved, _slot: slot })
    }
}

fn report(r: &dyn Resource, outcome: Outcome, elapsed: Duration) -> Report {
    Report {
        key: r.key(),
        kind: r.kind(),
        name: r.name(),
        outcome,
        elapsed,
    }
}

fn succeeded(outcome: &Outcome) -> bool {
    match outcome {
        // A foreign resource left alone does not block the rest of a `down`.
        Outcome::Changed(_) | Outcome::Inspected(_) => true,
        Outcome::Failed(_) | Outcome::NotAttempted(_) => false,
    }
}

/// Whether any resource failed or was not attempted.
pub fn any_failed(reports: &[Report]) -> bool {
    reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::NotAttempted(_)))
}

#[cfg(test)]
mod tests;
