//! Secrets Manager in realism mode: a secret deleted without a recovery window is purged in the
//! background, and until then CreateSecret of the same name answers 400 InvalidRequestException
//! "... already scheduled for deletion" (AWS documents it: back off and retry). The emulator
//! forgets the secret at once.

use std::collections::HashMap;

use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Secrets {
    /// Secret name -> since DeleteSecret with ForceDeleteWithoutRecovery.
    purging: HashMap<String, Window>,
}

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if exchange.operation != "CreateSecret" {
        return None;
    }
    let name = exchange.json_body()["Name"].as_str()?.to_string();
    let purging = world.secrets.purging.get(&name);
    world
        .within(Behaviour::SecretPurgeLag, purging)
        .then(|| Verdict::Error {
            behaviour: Behaviour::SecretPurgeLag,
            status: 400,
            code: "InvalidRequestException",
            message: "You can't create this secret because a secret with this name is already scheduled for deletion."
                .to_string(),
        })
}

pub(super) fn after(world: &mut World, exchange: &Exchange) {
    let body = exchange.json_body();
    if exchange.operation != "DeleteSecret" || body["ForceDeleteWithoutRecovery"] != true {
        return;
    }
    if let Some(name) = body["SecretId"].as_str() {
        let window = world.open_window();
        world.secrets.purging.insert(name.to_string(), window);
    }
}
