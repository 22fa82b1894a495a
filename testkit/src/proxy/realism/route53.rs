//! Route 53 in realism mode: a change is `PENDING` until every Route 53 name server has it, usually
//! within a minute; only then is it `INSYNC` in GetChange. The emulator answers `INSYNC` at once.
//! Route 53 speaks XML: the status is rewritten in the answer's text.

use std::collections::HashMap;

use super::{Behaviour, Exchange, Window, World};

#[derive(Default)]
pub(super) struct Changes {
    /// Change id (`/change/...` as Route 53 gives it) -> since ChangeResourceRecordSets made it.
    made: HashMap<String, Window>,
}

const INSYNC: &str = "<Status>INSYNC</Status>";
const PENDING: &str = "<Status>PENDING</Status>";

/// The change id in a `ChangeInfo` answer.
fn change_id(text: &str) -> Option<String> {
    let start = text.find("<Id>")? + "<Id>".len();
    let end = start + text[start..].find("</Id>")?;
    Some(text[start..end].to_string())
}

/// The answer reshaped, if it was.
pub(super) fn after(world: &mut World, exchange: &Exchange, body: &[u8]) -> Option<Vec<u8>> {
    if !world.is_on(Behaviour::DnsPropagation) {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let id = match (exchange.method, parts.as_slice()) {
        ("POST", [_, "hostedzone", _, "rrset"]) => {
            let id = change_id(text)?;
            let window = world.open_window();
            world.changes.made.insert(id.clone(), window);
            id
        }
        ("GET", [_, "change", id]) => format!("/change/{id}"),
        _ => return None,
    };
    let made = world.changes.made.get(&id).or_else(|| {
        // Route 53 gives the id as `/change/ID`, the emulator may give it bare.
        world.changes.made.get(id.trim_start_matches("/change/"))
    });
    if !text.contains(INSYNC) || !world.within(Behaviour::DnsPropagation, made) {
        return None;
    }
    Some(text.replace(INSYNC, PENDING).into_bytes())
}
