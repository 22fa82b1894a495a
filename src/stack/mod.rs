//! The stack file: strict serde types, defaults, and validation against AWS limits.
//!
//! Parsing never touches AWS. Every error names the file, line and column and the field; the
//! caller exits with code 2 on any of them.

mod positions;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use positions::{Position, Positions};

/// The route keys a stack may declare: each has a bundled handler.
pub const KNOWN_ROUTES: &[&str] = &["subscribe", "unsubscribe"];

/// Retention periods CloudWatch Logs accepts, in days.
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/// Tag keys wsstack sets on every resource to find it again without a state file.
pub const TAG_STACK: &str = "wsstack:stack";
pub const TAG_STAGE: &str = "wsstack:stage";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub name: String,
    #[serde(default = "default_stage")]
    pub stage: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub table: Table,
    #[serde(default)]
    pub queue: Queue,
    #[serde(default)]
    pub events: Events,
    #[serde(default)]
    pub handlers: Handlers,
    #[serde(default = "default_routes")]
    pub routes: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BillingMode {
    #[default]
    OnDemand,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Table {
    pub billing_mode: BillingMode,
    pub ttl_hours: u32,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            billing_mode: BillingMode::OnDemand,
            ttl_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    pub visibility_timeout_seconds: u32,
    pub message_retention_seconds: u32,
    pub receive_wait_seconds: u32,
    pub dead_letter: DeadLetter,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            visibility_timeout_seconds: 60,
            message_retention_seconds: 345_600,
            receive_wait_seconds: 20,
            dead_letter: DeadLetter::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetter {
    pub max_receive_count: u32,
    pub message_retention_seconds: u32,
}

impl Default for DeadLetter {
    fn default() -> Self {
        DeadLetter {
            max_receive_count: 5,
            message_retention_seconds: 1_209_600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    pub bus: String,
    pub detail_type: String,
    pub source: Option<String>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            bus: "default".into(),
            detail_type: "Entity Updated".into(),
            source: None,
        }
    }
}

/// The source `send-event` uses when the stack file filters on none.
pub const DEFAULT_EVENT_SOURCE: &str = "wsstack";

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Handlers {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub architecture: Architecture,
    pub log_retention_days: u32,
    pub push_batch_size: u32,
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers {
            memory_mb: 256,
            timeout_seconds: 10,
            architecture: Architecture::X86_64,
            log_retention_days: 14,
            push_batch_size: 10,
        }
    }
}

fn default_stage() -> String {
    "dev".into()
}

fn default_routes() -> Vec<String> {
    KNOWN_ROUTES.iter().map(|r| r.to_string()).collect()
}

/// An error in a stack file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct StackError {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The field at fault (dotted path), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for StackError {}

/// All errors of one file, reported together so that one run shows every problem.
#[derive(Debug, Clone, PartialEq)]
pub struct StackErrors(pub Vec<StackError>);

impl fmt::Display for StackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackErrors {}

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
    let stack: Stack =
        serde_yaml::from_str(text).map_err(|error| StackErrors(vec![serde_error(path, text, &error)]))?;
    let errors: Vec<StackError> = validate(&stack)
        .into_iter()
        .map(|problem| problem.locate(path, &positions))
        .collect();
    if errors.is_empty() {
        Ok(stack)
    } else {
        Err(StackErrors(errors))
    }
}

fn serde_error(path: &Path, text: &str, error: &serde_yaml::Error) -> StackError {
    let mut message = error.to_string();
    // serde_yaml appends " at line L column C" to the message; the position goes in front instead.
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let mut position = error.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    // Some scanner errors (control characters) come with a byte offset, "at position N", only.
    if let Some(offset) = message
        .split("at position ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<usize>().ok())
    {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        position = Some(Position { line, column });
        if let Some(cut) = message.find(" at position ") {
            message.truncate(cut);
        }
    }
    let (field, mut message) = split_field(&message);
    // What the parser says is right but not always what to do about it.
    if message.contains("expected u32") && message.contains("integer `") {
        message.push_str("; use a whole number from 0 to 4294967295, within the range the field allows");
    }
    let offending_line = position.and_then(|p| text.lines().nth(p.line.saturating_sub(1)));
    if message.contains("cannot start any token") && offending_line.is_some_and(|l| l.contains('\t')) {
        message.push_str("; YAML does not allow tabs for indentation: use spaces");
    }
    let mut error = StackError {
        file: path.to_path_buf(),
        position,
        field,
        message,
    };
    if text.trim().is_empty() {
        error.message = "the stack file is empty: it needs at least `name:`".into();
        error.field = None;
    }
    error
}

/// serde_yaml prefixes nested errors with the path: "queue.dead_letter: invalid type ...".
fn split_field(message: &str) -> (Option<String>, String) {
    if let Some((head, rest)) = message.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '[' || c == ']');
        if looks_like_path {
            return (Some(head.replace('[', ".").replace(']', "")), rest.to_string());
        }
    }
    (None, message.to_string())
}

/// A semantic problem before it is given a position.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn locate(self, path: &Path, positions: &Positions) -> StackError {
        StackError {
            file: path.to_path_buf(),
            position: positions.of(&self.field).or_else(|| positions.key(&self.field)),
            field: Some(self.field),
            message: self.message,
        }
    }
}

fn check_range(problems: &mut Vec<Problem>, field: &str, value: u32, min: u32, max: u32, unit: &str) {
    if value < min || value > max {
        problems.push(Problem::new(
            field,
            format!("{value} is out of range: AWS allows {min} to {max} {unit}"),
        ));
    }
}

fn is_letter_digit_hyphen(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Everything wrong with a deserialized stack that AWS would reject (or that cannot work).
pub fn validate(stack: &Stack) -> Vec<Problem> {
    let mut problems = Vec::new();

    if stack.name.is_empty() {
        problems.push(Problem::new("name", "must not be empty"));
    } else if !stack.name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !is_letter_digit_hyphen(&stack.name)
        || stack.name.ends_with('-')
    {
        problems.push(Problem::new(
            "name",
            format!(
                "`{}` is not a valid stack name: use letters, digits and hyphens, starting with a letter and not ending with a hyphen",
                stack.name
            ),
        ));
    }
    if stack.stage.is_empty()
        || stack.stage.len() > 32
        || !stack.stage.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !is_letter_digit_hyphen(&stack.stage)
        || stack.stage.ends_with('-')
    {
        problems.push(Problem::new(
            "stage",
            format!(
                "`{}` is not a valid stage: 1 to 32 letters, digits and hyphens, starting with a letter or digit",
                stack.stage
            ),
        ));
    }
    if let Some(region) = &stack.region {
        if !is_region(region) {
            problems.push(Problem::new(
                "region",
                format!("`{region}` does not look like an AWS region (e.g. eu-west-1)"),
            ));
        }
    }

    check_range(
        &mut problems,
        "table.ttl_hours",
        stack.table.ttl_hours,
        1,
        8760,
        "hours",
    );

    let queue = &stack.queue;
    check_range(
        &mut problems,
        "queue.visibility_timeout_seconds",
        queue.visibility_timeout_seconds,
        0,
        43_200,
        "seconds",
    );
    check_range(
        &mut problems,
        "queue.message_retention_seconds",
        queue.message_retention_seconds,
        60,
        1_209_600,
        "seconds",
    );
    check_range(
        &mut problems,
        "queue.receive_wait_seconds",
        queue.receive_wait_seconds,
        0,
        20,
        "seconds",
    );
    check_range(
        &mut problems,
        "queue.dead_letter.max_receive_count",
        queue.dead_letter.max_receive_count,
        1,
        1000,
        "receives",
    );
    check_range(
        &mut problems,
        "queue.dead_letter.message_retention_seconds",
        queue.dead_letter.message_retention_seconds,
        60,
        1_209_600,
        "seconds",
    );

    let events = &stack.events;
    if events.bus.is_empty()
        || events.bus.len() > 256
        || !events
            .bus
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
    {
        problems.push(Problem::new(
            "events.bus",
            format!(
                "`{}` is not a valid event bus name: 1 to 256 of letters, digits, . _ - /",
                events.bus
            ),
        ));
    }
    if events.detail_type.trim().is_empty() || events.detail_type.len() > 128 {
        problems.push(Problem::new("events.detail_type", "must be 1 to 128 characters"));
    }
    if let Some(source) = &events.source {
        if source.trim().is_empty() || source.len() > 256 || source.starts_with("aws.") {
            problems.push(Problem::new(
                "events.source",
                format!(
                    "`{source}` is not a usable source: 1 to 256 characters, and `aws.` sources are reserved for AWS"
                ),
            ));
        }
    }

    let handlers = &stack.handlers;
    check_range(
        &mut problems,
        "handlers.memory_mb",
        handlers.memory_mb,
        128,
        10_240,
        "MB",
    );
    check_range(
        &mut problems,
        "handlers.timeout_seconds",
        handlers.timeout_seconds,
        1,
        900,
        "seconds",
    );
    check_range(
        &mut problems,
        "handlers.push_batch_size",
        handlers.push_batch_size,
        1,
        10,
        "messages",
    );
    if handlers.architecture == Architecture::Arm64 {
        problems.push(Problem::new(
            "handlers.architecture",
            "arm64 is not supported yet: the bundled handlers are built for x86_64",
        ));
    }
    if !LOG_RETENTION_DAYS.contains(&handlers.log_retention_days) {
        problems.push(Problem::new(
            "handlers.log_retention_days",
            format!(
                "{} is not a retention CloudWatch Logs accepts; use one of {:?}",
                handlers.log_retention_days, LOG_RETENTION_DAYS
            ),
        ));
    }
    // Lambda refuses an SQS event source whose visibility timeout is below the function timeout.
    if queue.visibility_timeout_seconds < handlers.timeout_seconds {
        problems.push(Problem::new(
            "queue.visibility_timeout_seconds",
            format!(
                "{} s is below handlers.timeout_seconds ({} s); Lambda rejects such a queue as an event source (AWS recommends at least 6 x the timeout)",
                queue.visibility_timeout_seconds, handlers.timeout_seconds
            ),
        ));
    }

    let mut seen = Vec::new();
    for (i, route) in stack.routes.iter().enumerate() {
        let field = format!("routes.{i}");
        if route == "$connect" || route == "$disconnect" || route == "$default" {
            problems.push(Problem::new(
                field,
                format!(
                    "`{route}` does not belong here: $connect and $disconnect are part of every stack; list the routes clients call by action ({})",
                    KNOWN_ROUTES.join(", ")
                ),
            ));
        } else if !KNOWN_ROUTES.contains(&route.as_str()) {
            problems.push(Problem::new(
                field,
                format!(
                    "unknown route `{route}`: the bundled handlers serve {}",
                    KNOWN_ROUTES.join(", ")
                ),
            ));
        } else if seen.contains(route) {
            problems.push(Problem::new(field, format!("route `{route}` is listed twice")));
        }
        seen.push(route.clone());
    }

    // Every resource gets our two tags too; AWS allows 50 per resource.
    if stack.tags.len() > 48 {
        problems.push(Problem::new(
            "tags",
            format!(
                "{} tags: at most 48 (AWS allows 50 and wsstack adds 2)",
                stack.tags.len()
            ),
        ));
    }
    for (key, value) in &stack.tags {
        let field = format!("tags.{key}");
        if key.is_empty() || key.len() > 128 {
            problems.push(Problem::new(field, "tag keys are 1 to 128 characters"));
        } else if key.to_ascii_lowercase().starts_with("aws:") || key.starts_with("wsstack:") {
            problems.push(Problem::new(
                field,
                format!("tag key `{key}` is reserved (aws: belongs to AWS, wsstack: to wsstack)"),
            ));
        } else if !key.chars().all(is_tag_char) {
            problems.push(Problem::new(
                field,
                format!("tag key `{key}` has characters AWS does not allow in tags"),
            ));
        } else if value.len() > 256 || !value.chars().all(is_tag_char) {
            problems.push(Problem::new(
                field,
                "tag values are at most 256 characters of letters, digits, spaces and + - = . _ : / @",
            ));
        }
    }

    if problems.iter().all(|p| p.field != "name" && p.field != "stage") {
        for (field, message) in crate::names::check_lengths(stack, stack.region.as_deref()) {
            problems.push(Problem::new(field, message));
        }
    }
    problems
}

/// The tag characters every service we use accepts (the IAM set, the narrowest).
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || " +-=._:/@".contains(c)
}

pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().unwrap().chars().all(|c| c.is_ascii_digit())
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
        assert_eq!(stack.routes, vec!["subscribe", "unsubscribe"]);
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
    fn regions() {
        assert!(is_region("eu-west-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("europe"));
        assert!(!is_region("EU-WEST-1"));
    }
}
