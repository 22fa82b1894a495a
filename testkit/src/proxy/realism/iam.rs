//! IAM in realism mode: remembers when a role or its policy was written (Lambda reads that for
//! the propagation lag) and refuses DeleteRole for a while after the role's last policy went.

use super::{Behaviour, Exchange, Verdict, World};

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if exchange.operation != "DeleteRole" {
        return None;
    }
    let role = exchange.form("RoleName")?;
    world
        .within(Behaviour::RoleDeleteConflict, world.policies_deleted.get(&role))
        .then(|| Verdict::Error {
            behaviour: Behaviour::RoleDeleteConflict,
            status: 409,
            code: "DeleteConflict",
            message: "Cannot delete entity, must delete policies first.".into(),
        })
}

pub(super) fn after(world: &mut World, exchange: &Exchange) {
    let Some(role) = exchange.form("RoleName") else {
        return;
    };
    match exchange.operation {
        "CreateRole" | "PutRolePolicy" => {
            let window = world.open_window();
            world.roles_written.insert(role, window);
        }
        "DeleteRolePolicy" => {
            let window = world.open_window();
            world.policies_deleted.insert(role, window);
        }
        "DeleteRole" => {
            world.roles_written.remove(&role);
            world.policies_deleted.remove(&role);
        }
        _ => {}
    }
}

/// The role name of a role ARN (`arn:aws:iam::123456789012:role/path/name`).
pub(super) fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
