//! The dependency graph of a stack's resources, walked with bounded concurrency.
//!
//! `up` runs `ensure` in dependency order, `down` runs `destroy` in reverse order, `status` runs
//! `inspect` on everything at once. A resource whose prerequisite failed is not attempted; the
//! others still run, so one failure does not hide the state of the rest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::aws::Aws;
use crate::graph::{Key, Resolved};
use crate::progress::Progress;
use crate::resources::{Change, Ctx, Resource, State};

/// How many resources are worked on at once, unless `WSSTACK_MAX_CONCURRENCY` says otherwise
/// (1 gives the sequential baseline the benchmarks compare against).
const CONCURRENCY: usize = 8;

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
pub fn order(resources: &[Box<dyn Resource>]) -> Result<Vec<usize>> {
    let mut index: BTreeMap<Key, usize> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        if index.insert(r.key(), i).is_some() {
            bail!("internal: two resources have the key {}", r.key());
        }
    }
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(resources.len());
    for r in resources {
        let mut these = Vec::new();
        for dep in r.depends_on() {
            match index.get(&dep) {
                Some(i) => these.push(*i),
                None => bail!("internal: {} depends on unknown {dep}", r.key()),
            }
        }
        deps.push(these);
    }
    let mut placed = vec![false; resources.len()];
    let mut ordered = Vec::with_capacity(resources.len());
    while ordered.len() < resources.len() {
        let before = ordered.len();
        for i in 0..resources.len() {
            if !placed[i] && deps[i].iter().all(|d| placed[*d]) {
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

/// Run `verb` over every resource, respecting dependencies (reversed for `Destroy`). `resolved`
/// comes in with what discovery found and goes out with what the run produced (the id of an API
/// it created; none for one it deleted).
pub async fn run(
    resources: &[Box<dyn Resource>],
    aws: &Aws,
    resolved: &mut Resolved,
    verb: Verb,
    progress: &Progress,
) -> Result<Vec<Report>> {
    run_bounded(resources, aws, resolved, verb, progress, concurrency()).await
}

async fn run_bounded(
    resources: &[Box<dyn Resource>],
    aws: &Aws,
    resolved: &mut Resolved,
    verb: Verb,
    progress: &Progress,
    limit: usize,
) -> Result<Vec<Report>> {
    let mut ordered = order(resources)?;
    if verb == Verb::Destroy {
        ordered.reverse();
    }
    let keys: Vec<Key> = resources.iter().map(|r| r.key()).collect();
    let position: BTreeMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    // prerequisites[i] = indexes that must finish successfully before i starts.
    let mut prerequisites: Vec<Vec<usize>> = vec![Vec::new(); resources.len()];
    for (i, r) in resources.iter().enumerate() {
        for dep in r.depends_on() {
            let d = position[&dep];
            match verb {
                Verb::Ensure => prerequisites[i].push(d),
                Verb::Destroy => prerequisites[d].push(i),
                Verb::Inspect => {}
            }
        }
    }

    let mut outcomes: Vec<Option<Report>> = vec![None; resources.len()];
    let mut started = vec![false; resources.len()];
    let mut running = FuturesUnordered::new();
    loop {
        // Start what is ready, and mark what can never run. In graph order, so a resource whose
        // prerequisite was just marked is itself marked in the same pass.
        for &i in &ordered {
            if started[i] {
                continue;
            }
            let r = &resources[i];
            let failed = prerequisites[i]
                .iter()
                .find(|p| outcomes[**p].as_ref().is_some_and(|rep| !succeeded(&rep.outcome)));
            if let Some(&p) = failed {
                started[i] = true;
                let reason = format!("{} did not succeed", resources[p].name());
                let outcome = Outcome::NotAttempted(reason);
                progress.finish(r.kind(), &r.name(), &outcome);
                outcomes[i] = Some(report(r.as_ref(), outcome, Duration::ZERO));
                continue;
            }
            if running.len() < limit && prerequisites[i].iter().all(|p| outcomes[*p].is_some()) {
                started[i] = true;
                progress.start(r.kind(), &r.name(), verb);
                // Each resource sees the values resolved when it starts, read-only.
                let snapshot = resolved.clone();
                running.push(async move {
                    let start = Instant::now();
                    let ctx = Ctx {
                        aws,
                        resolved: &snapshot,
                    };
                    let (outcome, output) = match verb {
                        Verb::Ensure => match r.ensure(ctx).await {
                            Ok(done) => (Ok(Outcome::Changed(done.change)), done.output),
                            Err(e) => (Err(e), None),
                        },
                        Verb::Destroy => (r.destroy(ctx).await.map(Outcome::Changed), None),
                        Verb::Inspect => (r.inspect(ctx).await.map(Outcome::Inspected), None),
                    };
                    let outcome = outcome.unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
                    (i, report(r.as_ref(), outcome, start.elapsed()), output)
                });
            }
        }
        // With cycles excluded by `order`, an empty set here means every resource has an outcome.
        let Some((i, report, output)) = running.next().await else {
            break;
        };
        progress.finish(report.kind, &report.name, &report.outcome);
        match &report.outcome {
            Outcome::Changed(Change::Deleted) if verb == Verb::Destroy => resolved.set(report.key.clone(), None),
            Outcome::Changed(_) if output.is_some() => resolved.set(report.key.clone(), output),
            _ => {}
        }
        outcomes[i] = Some(report);
    }
    // Report in graph order (reversed for destroy) so output reads like the plan.
    Ok(ordered.into_iter().filter_map(|i| outcomes[i].take()).collect())
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
