//! The stack file's shape: strict serde types with their defaults, and the constants other
//! modules share (tag keys, known routes, the default event source).
//!
//! Only what serde checks lives here; limits AWS imposes are in `validation`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The route keys a stack may declare: each has a bundled handler.
pub const KNOWN_ROUTES: &[&str] = &["subscribe", "unsubscribe"];

/// Retention periods CloudWatch Logs accepts, in days.
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/// Tag keys wsstack sets on every resource to find it again without a state file.
pub const TAG_STACK: &str = "wsstack:stack";
pub const TAG_STAGE: &str = "wsstack:stage";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Stack name: letters, digits and hyphens, starting with a letter. Prefix of every resource name.
    #[schemars(regex(pattern = r"^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$"))]
    pub name: String,
    /// The WebSocket API stage and the second part of every resource name.
    #[serde(default = "default_stage")]
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
    )]
    pub stage: String,
    /// Region to deploy to; without it, --region or the standard AWS chain decides.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)+-[0-9]+$"))]
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
    /// Who may connect; without it anyone who knows the URL may.
    #[serde(default)]
    pub auth: Option<Auth>,
    #[serde(default)]
    pub alarms: Option<Alarms>,
}

/// `auth:`: tokens signed with the stack's own secret (`secret: generated`), or by an OpenID
/// issuer (`issuer` + `audience`, keys from `jwks_url`). Exactly one of the two: `validation`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub secret: Option<SecretSource>,
    #[serde(default)]
    #[schemars(regex(pattern = r"^https://[^/?#\s]+"))]
    pub issuer: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub audience: Option<String>,
    #[serde(default)]
    #[schemars(regex(pattern = r"^https://[^/?#\s]+"))]
    pub jwks_url: Option<String>,
    #[serde(default = "default_user_claim")]
    #[schemars(length(min = 1))]
    pub user_claim: String,
    #[serde(default = "default_entities_claim")]
    #[schemars(length(min = 1))]
    pub entities_claim: String,
}

/// Where the HS256 key comes from; `generated` is the one way today (by `up`, into Secrets
/// Manager), named so that an imported key can be added without changing the shape.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Generated,
}

pub const DEFAULT_USER_CLAIM: &str = "sub";
pub const DEFAULT_ENTITIES_CLAIM: &str = "entities";

fn default_user_claim() -> String {
    DEFAULT_USER_CLAIM.into()
}

fn default_entities_claim() -> String {
    DEFAULT_ENTITIES_CLAIM.into()
}

/// How a validated `auth:` trusts tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    Secret,
    Issuer {
        issuer: &'a str,
        audience: &'a str,
        jwks_url: Option<&'a str>,
    },
}

impl Auth {
    /// The trust of a validated `auth:` (validation makes exactly one of the two present).
    pub fn trust(&self) -> Trust<'_> {
        match (&self.issuer, &self.audience) {
            (Some(issuer), Some(audience)) if self.secret.is_none() => Trust::Issuer {
                issuer,
                audience,
                jwks_url: self.jwks_url.as_deref(),
            },
            _ => Trust::Secret,
        }
    }
}

impl Stack {
    /// Who may open a connection, in one line for `up` and `status`.
    pub fn access(&self) -> String {
        match self.auth.as_ref().map(Auth::trust) {
            None => "anyone who knows the URL may connect (the stack file has no `auth:`)".into(),
            Some(Trust::Secret) => "connections need a token signed with the stack's secret (`wsstack token`)".into(),
            Some(Trust::Issuer { issuer, audience, .. }) => {
                format!("connections need a token from {issuer} for audience {audience}")
            }
        }
    }
}

/// `alarms:`: where the dead-letter alarms notify, besides the stack's SNS topic.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    #[serde(default)]
    #[schemars(regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingMode {
    #[default]
    OnDemand,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    /// The EventBridge bus the rule listens on.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9._/-]+$"))]
    pub bus: String,
    /// The detail-type the rule matches.
    #[schemars(length(min = 1, max = 128))]
    pub detail_type: String,
    /// The event source the rule matches (optional); `aws.` sources belong to AWS.
    #[schemars(length(min = 1, max = 256))]
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

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, JsonSchema)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Handlers {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub architecture: Architecture,
    pub log_retention_days: u32,
    pub push_batch_size: u32,
    pub push: Push,
}

/// How the push function fans out at scale (see the README, "Fan-out at scale").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Push {
    /// Above this many subscribers, one event's delivery is split into chunks of at most this many
    /// connections, sent back to the queue and delivered by several invocations at once.
    pub chunk_size: u32,
    /// PostToConnection calls per second for the whole stack. API Gateway's quota (10,000 requests
    /// per second per account and region, 2,500 in some) is shared by every API of the account.
    pub max_posts_per_second: u32,
    /// Push invocations at once (the event source's ScalingConfig MaximumConcurrency); each may
    /// post `max_posts_per_second / max_concurrency` times per second.
    pub max_concurrency: u32,
}

impl Default for Push {
    fn default() -> Self {
        Push {
            chunk_size: 1_000,
            max_posts_per_second: 2_000,
            max_concurrency: 5,
        }
    }
}

impl Push {
    /// One invocation's share of the post budget, posts per second.
    pub fn posts_per_second_per_invocation(&self) -> f64 {
        f64::from(self.max_posts_per_second) / f64::from(self.max_concurrency.max(1))
    }
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers {
            memory_mb: 256,
            timeout_seconds: 10,
            architecture: Architecture::X86_64,
            log_retention_days: 14,
            push_batch_size: 10,
            push: Push::default(),
        }
    }
}

fn default_stage() -> String {
    "dev".into()
}

fn default_routes() -> Vec<String> {
    KNOWN_ROUTES.iter().map(|r| r.to_string()).collect()
}
