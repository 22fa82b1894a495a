//! API Gateway in realism mode: writes to one API are serialised. A write under `/v2/apis/{id}/`
//! (a route, an integration, an authorizer, a stage, ...) that comes while another write to that
//! API is in flight, or moments after one, answers 409 ConflictException "Unable to complete
//! operation due to concurrent modification", as API Gateway does (terraform-provider-aws issues
//! 18018 and 40575). The emulator takes them all at once.

use std::collections::HashMap;

use super::{Behaviour, Exchange, Verdict, Window, World};

pub(super) const MESSAGE: &str = "Unable to complete operation due to concurrent modification. Please try again later.";

/// What realism mode knows of the writes to one API.
#[derive(Default)]
pub(super) struct Writes {
    in_flight: usize,
    /// Since the last write to it finished.
    last: Option<Window>,
    /// A write was refused while others were in flight: the conflict has shown for them, and the
    /// window their end opens need not show it again.
    refused_in_flight: bool,
}

#[derive(Default)]
pub(super) struct Apis(HashMap<String, Writes>);

/// The API a write goes to, when it is a write under `/v2/apis/{id}/`.
fn api_of_write(exchange: &Exchange) -> Option<String> {
    if exchange.method == "GET" {
        return None;
    }
    match exchange.segments().as_slice() {
        [v2, apis, api, _, ..] if v2 == "v2" && apis == "apis" => Some(api.clone()),
        _ => None,
    }
}

/// Refuse the write while another to the same API is under way or has just finished; otherwise
/// count it in flight until `finished`.
pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if !world.is_on(Behaviour::ConcurrentApiWrites) {
        return None;
    }
    let api = api_of_write(exchange)?;
    let writes = world.apis.0.get(&api);
    let in_flight = writes.is_some_and(|w| w.in_flight > 0);
    let busy = in_flight || world.within(Behaviour::ConcurrentApiWrites, writes.and_then(|w| w.last.as_ref()));
    if in_flight {
        world.apis.0.entry(api.clone()).or_default().refused_in_flight = true;
    }
    if busy {
        return Some(Verdict::Error {
            behaviour: Behaviour::ConcurrentApiWrites,
            status: 409,
            code: "ConflictException",
            message: MESSAGE.to_string(),
        });
    }
    world.apis.0.entry(api).or_default().in_flight += 1;
    None
}

/// A write `before` let through has been answered, whatever the answer: the next one to that API
/// meets the conflict once (unless one already met it while this one was in flight), and any
/// within the behaviour's duration.
pub(super) fn finished(world: &mut World, exchange: &Exchange) {
    let Some(api) = api_of_write(exchange) else {
        return;
    };
    let window = world.open_window();
    if let Some(writes) = world.apis.0.get_mut(&api) {
        writes.in_flight = writes.in_flight.saturating_sub(1);
        if std::mem::take(&mut writes.refused_in_flight) {
            window.show();
        }
        writes.last = Some(window);
    }
}
