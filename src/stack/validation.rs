//! What AWS would reject in a deserialized stack (or what cannot work), as problems named by
//! field; the numeric limits come from one table, `RANGES`.
//!
//! Makes no AWS call; positions are added later by `Problem::locate`.

mod auth;
mod routes;
pub use routes::is_own_route_name;
pub(super) use routes::load_packages;
mod domain;
mod history;
mod push;
mod stage;
use std::path::Path;

use super::errors::StackError;
use super::positions::Positions;
use super::schema::{Stack, LOG_RETENTION_DAYS};
use wsstack_handlers::frames::DEFAULT_USER_DETAIL_TYPE;

/// A semantic problem before it is given a position.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub field: String,
    pub message: String,
    /// Point at the field's key rather than its value: for a section that lacks something,
    /// whose value position is wherever its first entry happens to be.
    pub at_key: bool,
}

impl Problem {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
            at_key: false,
        }
    }

    fn at_key(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            at_key: true,
            ..Problem::new(field, message)
        }
    }

    pub fn locate(self, path: &Path, positions: &Positions) -> StackError {
        StackError {
            file: path.to_path_buf(),
            position: if self.at_key {
                positions.key(&self.field).or_else(|| positions.of(&self.field))
            } else {
                positions.of(&self.field).or_else(|| positions.key(&self.field))
            },
            field: Some(self.field),
            message: self.message,
        }
    }
}

/// A whole number AWS accepts only within `min..=max` (in `unit`).
pub(super) struct Range {
    pub(super) field: &'static str,
    value: fn(&Stack) -> u32,
    pub(super) min: u32,
    pub(super) max: u32,
    unit: &'static str,
}

/// Every numeric limit of the stack file, in the order of the file's sections.
pub(super) const RANGES: &[Range] = &[
    Range {
        field: "table.ttl_hours",
        value: |s| s.table.ttl_hours,
        min: 1,
        max: 8760,
        unit: "hours",
    },
    Range {
        field: "queue.visibility_timeout_seconds",
        value: |s| s.queue.visibility_timeout_seconds,
        min: 0,
        max: 43_200,
        unit: "seconds",
    },
    Range {
        field: "queue.message_retention_seconds",
        value: |s| s.queue.message_retention_seconds,
        min: 60,
        max: 1_209_600,
        unit: "seconds",
    },
    Range {
        field: "queue.receive_wait_seconds",
        value: |s| s.queue.receive_wait_seconds,
        min: 0,
        max: 20,
        unit: "seconds",
    },
    Range {
        field: "queue.dead_letter.max_receive_count",
        value: |s| s.queue.dead_letter.max_receive_count,
        min: 1,
        max: 1000,
        unit: "receives",
    },
    Range {
        field: "queue.dead_letter.message_retention_seconds",
        value: |s| s.queue.dead_letter.message_retention_seconds,
        min: 60,
        max: 1_209_600,
        unit: "seconds",
    },
    Range {
        field: "handlers.memory_mb",
        value: |s| s.handlers.memory_mb,
        min: 128,
        max: 10_240,
        unit: "MB",
    },
    Range {
        field: "handlers.timeout_seconds",
        value: |s| s.handlers.timeout_seconds,
        min: 1,
        max: 900,
        unit: "seconds",
    },
    Range {
        field: "handlers.push_batch_size",
        value: |s| s.handlers.push_batch_size,
        min: 1,
        max: 10,
        unit: "messages",
    },
    // 10,000 API Gateway connection ids (16 characters) and a payload fit in one 256 KiB SQS message.
    Range {
        field: "handlers.push.chunk_size",
        value: |s| s.handlers.push.chunk_size,
        min: 1,
        max: 10_000,
        unit: "connections",
    },
    // API Gateway's account-wide quota: more could only be throttled.
    Range {
        field: "handlers.push.max_posts_per_second",
        value: |s| s.handlers.push.max_posts_per_second,
        min: 1,
        max: 10_000,
        unit: "posts per second",
    },
    // The event source's ScalingConfig MaximumConcurrency.
    Range {
        field: "handlers.push.max_concurrency",
        value: |s| s.handlers.push.max_concurrency,
        min: 2,
        max: 1_000,
        unit: "invocations",
    },
];

/// The `RANGES` of one section (`table`, `queue`, `handlers`), so that problems come in the
/// order of the file.
fn check_ranges(problems: &mut Vec<Problem>, stack: &Stack, section: &str) {
    let in_section = |range: &&Range| range.field.split('.').next() == Some(section);
    for range in RANGES.iter().filter(in_section) {
        let value = (range.value)(stack);
        if value < range.min || value > range.max {
            problems.push(Problem::new(
                range.field,
                format!(
                    "{value} is out of range: AWS allows {} to {} {}",
                    range.min, range.max, range.unit
                ),
            ));
        }
    }
}

/// The most `handlers.max_subscriptions_per_connection` may be: `$disconnect` deletes 25 records
/// per BatchWriteItem call, so 5,000 take 200 calls, a few seconds.
const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 5_000;

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

    check_ranges(&mut problems, stack, "table");

    check_ranges(&mut problems, stack, "queue");

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
    if events.user_detail_type.trim().is_empty() || events.user_detail_type.len() > 128 {
        problems.push(Problem::new("events.user_detail_type", "must be 1 to 128 characters"));
    } else if events.user_detail_type == events.detail_type {
        // The push handler tells the two kinds apart by detail-type alone. Blame the one the file
        // sets: both defaults differ, so at least one of them was written there.
        let field = if events.user_detail_type == DEFAULT_USER_DETAIL_TYPE {
            "events.detail_type"
        } else {
            "events.user_detail_type"
        };
        problems.push(Problem::new(
            field,
            format!(
                "`{}` is both the entity update and the user notification detail-type; they must differ",
                events.user_detail_type
            ),
        ));
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
    check_ranges(&mut problems, stack, "handlers");
    let most = handlers.max_subscriptions_per_connection;
    if !(1..=MAX_SUBSCRIPTIONS_PER_CONNECTION).contains(&most) {
        problems.push(Problem::new(
            "handlers.max_subscriptions_per_connection",
            format!(
                "{most} is out of range: 1 to {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions (a connection's \
                 `$disconnect` deletes them all within the handlers' timeout)"
            ),
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
    push::check(&mut problems, handlers);
    let queue = &stack.queue;
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

    routes::check(&mut problems, stack);
    stage::check(&mut problems, stack);
    history::check(&mut problems, &stack.history);

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

    if let Some(auth) = &stack.auth {
        auth::check(&mut problems, auth);
    }
    if let Some(email) = stack.alarms.as_ref().and_then(|a| a.email.as_deref()) {
        if !auth::is_email(email) {
            problems.push(Problem::new(
                "alarms.email",
                format!("`{email}` is not an email address SNS can subscribe (name@domain.example)"),
            ));
        }
    }

    if let Some(domain) = &stack.domain {
        domain::check(&mut problems, domain, stack.region.as_deref());
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

/// The shape of a region name: `eu-west-1`, `us-gov-west-1`.
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

    /// `a.b.c` with `value` as nested YAML under a minimal stack.
    fn stack_with(field: &str, value: u32) -> String {
        let mut text = String::from("name: demo\n");
        let parts: Vec<&str> = field.split('.').collect();
        for (depth, part) in parts.iter().enumerate() {
            text.push_str(&"  ".repeat(depth));
            if depth + 1 == parts.len() {
                text.push_str(&format!("{part}: {value}\n"));
            } else {
                text.push_str(&format!("{part}:\n"));
            }
        }
        text
    }

    #[test]
    fn every_range_reads_the_field_it_names() {
        for range in RANGES {
            let text = stack_with(range.field, range.max + 1);
            let errors = crate::stack::parse(Path::new("stack.yaml"), &text).unwrap_err();
            let expected = format!(
                "{}: {} is out of range: AWS allows {} to {} {}",
                range.field,
                range.max + 1,
                range.min,
                range.max,
                range.unit
            );
            assert!(
                errors.0.iter().any(|e| e.to_string().ends_with(&expected)),
                "{}: {errors}",
                range.field
            );
            let at_limit = crate::stack::parse(Path::new("stack.yaml"), &stack_with(range.field, range.max));
            if let Err(errors) = at_limit {
                assert!(
                    errors.0.iter().all(|e| !e.message.contains("out of range")),
                    "{}: {errors}",
                    range.field
                );
            }
        }
    }

    #[test]
    fn one_detail_type_for_both_kinds_of_event_is_refused_where_it_is_written() {
        let parse = |text: &str| crate::stack::parse(Path::new("stack.yaml"), text);
        let error = parse("name: demo\nevents:\n  user_detail_type: Entity Updated\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "stack.yaml:3:21: events.user_detail_type: `Entity Updated` is both the entity update and the user notification detail-type; they must differ"
        );
        let error = parse("name: demo\nevents:\n  detail_type: Send User Push Notification\n").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("stack.yaml:3:16: events.detail_type: `Send User Push Notification` is both"),
            "{error}"
        );
        let stack = parse("name: demo\nevents:\n  detail_type: Order Changed\n  user_detail_type: Notify\n").unwrap();
        assert_eq!(stack.events.user_detail_type, "Notify");
        assert_eq!(
            parse("name: demo\n").unwrap().events.user_detail_type,
            "Send User Push Notification"
        );
    }
}
