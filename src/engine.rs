//! The dependency graph of a stack's resources, walked with bounded concurrency.
//!
//! `up` runs `ensure` in dependency order, `down` runs `destroy` in reverse order, `status` runs
//! `inspect` on everything at once. A resource whose prerequisite failed is not attempted; the
//! others still run, so one failure does not hide the state of the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::aws::Aws;
use crate::progress::Progress;
use crate::resources::{Change, Resource, State};

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
    pub key: String,
    pub kind: &'static str,
    pub name: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Check the graph: every dependency exists, no cycles. Returns keys in a valid order.
pub fn order(resources: &[Box<dyn Resource>]) -> Result<Vec<String>> {
    let keys: BTreeSet<String> = resources.iter().map(|r| r.key()).collect();
    for r in resources {
        for dep in r.depends_on() {
            if !keys.contains(&dep) {
                bail!("internal: {} depends on unknown {dep}", r.key());
            }
        }
    }
    let mut done: Vec<String> = Vec::new();
    while done.len() < resources.len() {
        let before = done.len();
        for r in resources {
            if !done.contains(&r.key()) && r.depends_on().iter().all(|d| done.contains(d)) {
                done.push(r.key());
            }
        }
        if done.len() == before {
            bail!("internal: dependency cycle among resources");
        }
    }
    Ok(done)
}

/// Run `verb` over every resource, respecting dependencies (reversed for `Destroy`).
pub async fn run(resources: &[Box<dyn Resource>], aws: &Aws, verb: Verb, progress: &Progress) -> Result<Vec<Report>> {
    // Checks the graph too: every dependency exists, no cycles.
    let mut ordered = order(resources)?;
    // prerequisites[key] = keys that must finish successfully first.
    let mut prerequisites: BTreeMap<String, Vec<String>> = resources.iter().map(|r| (r.key(), Vec::new())).collect();
    for r in resources {
        for dep in r.depends_on() {
            match verb {
                Verb::Ensure => prerequisites.get_mut(&r.key()).unwrap().push(dep),
                Verb::Destroy => prerequisites.get_mut(&dep).unwrap().push(r.key()),
                Verb::Inspect => {}
            }
        }
    }

    let mut reports: BTreeMap<String, Report> = BTreeMap::new();
    let mut started: BTreeSet<String> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let limit = concurrency();
    loop {
        // Start what is ready, and mark what can never run.
        for r in resources {
            let key = r.key();
            if started.contains(&key) || running.len() >= limit {
                continue;
            }
            let prereqs = &prerequisites[&key];
            if let Some(failed) = prereqs
                .iter()
                .find(|p| reports.get(*p).is_some_and(|rep| !succeeded(&rep.outcome)))
            {
                started.insert(key.clone());
                let reason = format!("{} did not succeed", reports[failed].name);
                progress.finish(r.kind(), &r.name(), &Outcome::NotAttempted(reason.clone()));
                reports.insert(
                    key.clone(),
                    Report {
                        key,
                        kind: r.kind(),
                        name: r.name(),
                        outcome: Outcome::NotAttempted(reason),
                        elapsed: Duration::ZERO,
                    },
                );
                continue;
            }
            if prereqs.iter().all(|p| reports.contains_key(p)) {
                started.insert(key.clone());
                progress.start(r.kind(), &r.name(), verb);
                running.push(async move {
                    let start = Instant::now();
                    let outcome = match verb {
                        Verb::Ensure => r.ensure(aws).await.map(Outcome::Changed),
                        Verb::Destroy => r.destroy(aws).await.map(Outcome::Changed),
                        Verb::Inspect => r.inspect(aws).await.map(Outcome::Inspected),
                    };
                    let outcome = outcome.unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
                    Report {
                        key: r.key(),
                        kind: r.kind(),
                        name: r.name(),
                        outcome,
                        elapsed: start.elapsed(),
                    }
                });
            }
        }
        match running.next().await {
            Some(report) => {
                progress.finish(report.kind, &report.name, &report.outcome);
                reports.insert(report.key.clone(), report);
            }
            None => {
                if reports.len() == resources.len() {
                    break;
                }
                // Nothing running and something unstarted whose prerequisites are not done:
                // only possible with a cycle, which `order` already excluded.
                if started.len() == resources.len() {
                    break;
                }
            }
        }
    }
    // Report in graph order (reversed for destroy) so output reads like the plan.
    if verb == Verb::Destroy {
        ordered.reverse();
    }
    Ok(ordered.into_iter().filter_map(|k| reports.remove(&k)).collect())
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
