//! The critical path of a run from the proxy's call log: the longest chain of calls in which each
//! starts after the previous one ended, i.e. the round trips that happened one after another.
//! A fully sequential run's chain is its call count; perfect overlap would give 1.

use crate::Call;

/// The calls of one longest chain, in order.
pub fn critical_chain(calls: &[Call]) -> Vec<&Call> {
    let mut calls: Vec<&Call> = calls.iter().collect();
    calls.sort_by_key(|c| c.started);
    let mut depth = vec![1usize; calls.len()];
    let mut previous: Vec<Option<usize>> = vec![None; calls.len()];
    for i in 0..calls.len() {
        for j in 0..i {
            if calls[j].ended <= calls[i].started && depth[j] + 1 > depth[i] {
                depth[i] = depth[j] + 1;
                previous[i] = Some(j);
            }
        }
    }
    let mut at = (0..calls.len()).max_by_key(|i| depth[*i]);
    let mut chain = Vec::new();
    while let Some(i) = at {
        chain.push(calls[i]);
        at = previous[i];
    }
    chain.reverse();
    chain
}

/// The chain as `service operation -> ...`, for messages.
pub fn describe(chain: &[&Call]) -> String {
    let steps: Vec<String> = chain.iter().map(|c| format!("{} {}", c.service, c.operation)).collect();
    steps.join(" -> ")
}
