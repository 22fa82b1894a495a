//! The checks of `routes:`: bundled names, the route keys of own routes, one of `code` or
//! `bootstrap`; and, once those hold, reading each own route's package (a missing file, a zip
//! without `bootstrap` at its root). No AWS call.

use std::path::Path;

use super::super::schema::{Route, Stack, DEFAULT_ROUTE, KNOWN_ROUTES};
use super::Problem;
use crate::stack::schema::Package;

/// Whether `name` can be an own route's key: `$default`, or an action that is also usable in the
/// function, log group and role names derived from it (`names::own_route_handler`).
pub fn is_own_route_name(name: &str) -> bool {
    name == DEFAULT_ROUTE
        || (name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

pub(super) fn check(problems: &mut Vec<Problem>, stack: &Stack) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, route) in stack.routes.iter().enumerate() {
        let field = format!("routes.{i}");
        let name = route.name();
        match route {
            Route::Bundled(name) if name == "$connect" || name == "$disconnect" => problems.push(Problem::new(
                field.clone(),
                format!("`{name}` does not belong here: $connect and $disconnect are part of every stack"),
            )),
            Route::Bundled(name) if !KNOWN_ROUTES.contains(&name.as_str()) => problems.push(Problem::new(
                field.clone(),
                format!(
                    "unknown route `{name}`: the bundled handlers serve {}; a route of your own names its code, e.g. `{{name: {name}, code: ./{}.zip}}`",
                    KNOWN_ROUTES.join(", "),
                    name.trim_start_matches('$')
                ),
            )),
            Route::Bundled(_) => {}
            Route::Own(own) => {
                if KNOWN_ROUTES.contains(&own.name.as_str()) {
                    problems.push(Problem::new(
                        format!("{field}.name"),
                        format!("`{}` is a bundled route: list it by name alone, or give your route another name", own.name),
                    ));
                } else if !is_own_route_name(&own.name) {
                    problems.push(Problem::new(
                        format!("{field}.name"),
                        format!(
                            "`{}` is not a route key for your own code: use `$default`, or up to 40 letters, digits, - and _ starting with a letter ($connect and $disconnect stay bundled)",
                            own.name
                        ),
                    ));
                }
                if own.schema.as_ref().is_some_and(|schema| !schema.is_object() && !schema.is_boolean()) {
                    problems.push(Problem::new(
                        format!("{field}.schema"),
                        "a JSON Schema is an object (or true/false), e.g. {type: object, required: [text]}",
                    ));
                }
                match (&own.code, &own.bootstrap) {
                    (Some(_), Some(_)) => problems.push(Problem::new(
                        format!("{field}.bootstrap"),
                        "give either `code` (a zip) or `bootstrap` (an executable), not both",
                    )),
                    // At the name: a mapping inside a sequence has no position of its own.
                    (None, None) => problems.push(Problem::new(
                        format!("{field}.name"),
                        format!(
                            "route `{}` needs its code: `code` (a zip with `bootstrap` at its root) or `bootstrap` (an executable for the provided.al2023 runtime)",
                            own.name
                        ),
                    )),
                    _ => {}
                }
            }
        }
        if seen.contains(&name) {
            problems.push(Problem::new(field, format!("route `{name}` is listed twice")));
        }
        seen.push(name);
    }
}

/// Read every own route's code (paths relative to `dir`, the stack file's directory) into its
/// package; what cannot be read or run is a problem at the path's line.
pub(in crate::stack) fn load_packages(stack: &mut Stack, dir: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, route) in stack.routes.iter_mut().enumerate() {
        let Route::Own(own) = route else { continue };
        let (field, code, bootstrap) = match (&own.code, &own.bootstrap) {
            (Some(code), None) => ("code", Some(dir.join(code)), None),
            (None, Some(bootstrap)) => ("bootstrap", None, Some(dir.join(bootstrap))),
            _ => continue,
        };
        match crate::bundle::own_route(code.as_deref(), bootstrap.as_deref()) {
            Ok(bundle) => {
                own.package = Some(Package {
                    zip: bundle.zip.into(),
                    sha256: bundle.sha256,
                })
            }
            Err(error) => problems.push(Problem::new(format!("routes.{i}.{field}"), format!("{error:#}"))),
        }
    }
    problems
}
