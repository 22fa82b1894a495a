//! The stack file: strict serde types and defaults (`schema`), checks against AWS limits
//! (`validation`), and errors that name file, line, column and field (`errors`).
//!
//! Parsing never touches AWS; the caller exits with code 2 on any error.

mod errors;
mod json_schema;
mod positions;
mod schema;
mod validation;

use std::path::{Path, PathBuf};

pub use errors::{StackError, StackErrors};
pub use json_schema::json_schema;
pub use positions::Positions;
pub use schema::*;
pub use validation::{is_own_route_name, is_region, validate, Problem};

/// A parsed and validated stack file, with what is needed to point at its lines later.
#[derive(Debug)]
pub struct StackFile {
    pub path: PathBuf,
    pub stack: Stack,
    pub positions: Positions,
}

impl StackFile {
    /// Checks that need the deployment region (IAM role names contain it), before any AWS call.
    pub fn check_region(&self, region: &str) -> Result<(), StackErrors> {
        let errors: Vec<StackError> = crate::names::check_lengths(&self.stack, Some(region))
            .into_iter()
            .map(|(field, message)| Problem::new(field, message).locate(&self.path, &self.positions))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StackErrors(errors))
        }
    }
}

/// Read, parse and validate a stack file.
pub fn load(path: &Path) -> Result<StackFile, StackErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        StackErrors(vec![StackError {
            file: path.to_path_buf(),
            position: None,
            field: None,
            message: format!("cannot read the stack file: {error}"),
        }])
    })?;
    let stack = parse(path, &text)?;
    Ok(StackFile {
        path: path.to_path_buf(),
        stack,
        positions: Positions::index(&text),
    })
}

/// Parse and validate stack file text (`path` is only used in messages).
pub fn parse(path: &Path, text: &str) -> Result<Stack, StackErrors> {
    let positions = Positions::index(text);
    // serde_yaml places these at the start of the document or of the mapping; the event pass
    // knows exactly where the repeated key and the second document are.
    if let Some(second) = positions.documents.get(1) {
        return Err(StackErrors(vec![StackError {
            file: path.to_path_buf(),
            position: Some(*second),
            field: None,
            message:
                "a second YAML document: deserializing from YAML containing more than one document is not supported"
                    .into(),
        }]));
    }
    if let Some((key, at, first)) = positions.duplicates.first() {
        let (parent, name) = match key.rsplit_once('.') {
            Some((parent, name)) => (Some(parent.to_string()), name),
            None => (None, key.as_str()),
        };
        return Err(StackErrors(vec![StackError {
            file: path.to_path_buf(),
            position: Some(*at),
            field: parent,
            message: format!("duplicate field `{name}` (first given at line {})", first.line),
        }]));
    }
    let mut stack: Stack =
        serde_yaml::from_str(text).map_err(|error| StackErrors(vec![errors::serde_error(path, text, &error)]))?;
    let mut problems = validate(&stack);
    if problems.is_empty() {
        // Own routes' code paths are relative to the stack file.
        let dir = path.parent().unwrap_or(Path::new(""));
        problems = validation::load_packages(&mut stack, dir);
    }
    let errors: Vec<StackError> = problems
        .into_iter()
        .map(|problem| problem.locate(path, &positions))
        .collect();
    if errors.is_empty() {
        Ok(stack)
    } else {
        Err(StackErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Stack, StackErrors> {
        parse(Path::new("stack.yaml"), text)
    }

    #[test]
    fn the_shipped_stack_file_is_valid() {
        let text = include_str!("../../stack.yaml");
        let stack = parse_str(text).unwrap();
        assert_eq!(stack.stage, "dev");
        assert_eq!(stack.table.ttl_hours, 24);
        assert_eq!(stack.events.detail_type, "Entity Updated");
        assert_eq!(stack.routes, vec!["subscribe", "unsubscribe", "resume"]);
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let stack = parse_str("name: demo\n").unwrap();
        assert_eq!(stack.queue.dead_letter.max_receive_count, 5);
        assert_eq!(stack.handlers.memory_mb, 256);
    }

    #[test]
    fn unknown_field_is_reported_with_its_line() {
        let error = parse_str("name: demo\nqueue:\n  visibility: 30\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("stack.yaml:3:3: queue: unknown field `visibility`"),
            "{text}"
        );
    }

    #[test]
    fn out_of_range_value_names_file_line_and_field() {
        let error = parse_str("name: demo\nqueue:\n  dead_letter:\n    max_receive_count: 0\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "stack.yaml:4:24: queue.dead_letter.max_receive_count: 0 is out of range: AWS allows 1 to 1000 receives"
        );
    }

    #[test]
    fn negative_numbers_and_tabs_get_a_hint() {
        let error = parse_str("name: demo\nqueue:\n  receive_wait_seconds: -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("stack.yaml:3:25: queue.receive_wait_seconds: invalid type: integer `-1`"),
            "{error}"
        );
        assert!(error.contains("use a whole number"), "{error}");
        let error = parse_str("name: demo\nqueue:\n\tvisibility_timeout_seconds: 60\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("stack.yaml:3:1:"), "{error}");
        assert!(error.contains("tabs"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = parse_str("name: demo\nhandlers:\n  memory_mb: 64\n  log_retention_days: 2\n").unwrap_err();
        assert_eq!(error.0.len(), 2, "{error}");
        assert_eq!(error.0[0].position.unwrap().line, 3);
        assert_eq!(error.0[1].position.unwrap().line, 4);
    }

    #[test]
    fn long_name_is_reported_at_the_name() {
        let name = "a".repeat(60);
        let error = parse_str(&format!("name: {name}\nstage: dev\n")).unwrap_err();
        assert_eq!(error.0[0].field.as_deref(), Some("name"));
        assert_eq!(error.0[0].position.unwrap().line, 1);
        assert!(error.0[0].message.contains("64"), "{error}");
    }

    #[test]
    fn auth_takes_its_defaults_and_says_how_it_trusts() {
        let stack = parse_str("name: demo\nauth:\n  secret: generated\n").unwrap();
        let auth = stack.auth.unwrap();
        assert_eq!(auth.trust(), Trust::Secret);
        assert_eq!(
            (auth.user_claim.as_str(), auth.entities_claim.as_str()),
            ("sub", "entities")
        );
        let stack = parse_str(
            "name: demo\nauth:\n  issuer: https://id.example.com/pool\n  audience: app\n  user_claim: email\nalarms:\n  email: ops@example.com\n",
        )
        .unwrap();
        let auth = stack.auth.unwrap();
        assert_eq!(
            auth.trust(),
            Trust::Issuer {
                issuer: "https://id.example.com/pool",
                audience: "app",
                jwks_url: None
            }
        );
        assert_eq!(auth.user_claim, "email");
        assert_eq!(stack.alarms.unwrap().email.as_deref(), Some("ops@example.com"));
        assert!(parse_str("name: demo\n").unwrap().auth.is_none());
    }

    #[test]
    fn auth_problems_name_their_line() {
        let cases = [
            (
                "name: demo\nauth:\n  secret: generated\n  issuer: https://id.example.com\n  audience: a\n",
                "stack.yaml:4:11: auth.issuer: give either `secret: generated` or an OpenID `issuer`, not both",
            ),
            (
                "name: demo\nauth:\n  user_claim: sub\n",
                "stack.yaml:2:1: auth: say how tokens are trusted",
            ),
            (
                "name: demo\nauth:\n  issuer: http://id.example.com\n  audience: a\n",
                "stack.yaml:3:11: auth.issuer: `http://id.example.com` must be an https URL",
            ),
            (
                "name: demo\nauth:\n  issuer: https://id.example.com\n",
                "stack.yaml:2:1: auth: `issuer` needs `audience`",
            ),
            (
                "name: demo\nauth:\n  issuer: https://id.example.com\n  audience: a\n  jwks_url: keys.json\n",
                "stack.yaml:5:13: auth.jwks_url: `keys.json` is not a URL",
            ),
            (
                "name: demo\nauth:\n  secret: generated\n  audience: a\n",
                "stack.yaml:4:13: auth.audience: belongs to an OpenID `issuer`",
            ),
            (
                "name: demo\nauth:\n  secret: generated\n  entities_claim: ''\n",
                "stack.yaml:4:19: auth.entities_claim: must name a claim of the token",
            ),
            (
                "name: demo\nauth:\n  secret: imported\n",
                "stack.yaml:3:11: auth.secret: unknown variant `imported`",
            ),
            (
                "name: demo\nalarms:\n  email: ops at example.com\n",
                "stack.yaml:3:10: alarms.email: `ops at example.com` is not an email address",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_str(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text}\n{error}");
        }
    }

    #[test]
    fn regions() {
        assert!(is_region("eu-west-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("europe"));
        assert!(!is_region("EU-WEST-1"));
    }
}
