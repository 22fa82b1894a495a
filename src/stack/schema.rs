//! The stack file's shape: strict serde types with their defaults, and the constants other
//! modules share (tag keys, known routes, the default event source).
//!
//! Only what serde checks lives here; limits AWS imposes are in `validation`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wsstack_handlers::frames::{DEFAULT_ENTITY_DETAIL_TYPE, DEFAULT_USER_DETAIL_TYPE};

/// The route keys a stack may declare by name alone: each has a bundled handler.
pub const KNOWN_ROUTES: &[&str] = &["subscribe", "unsubscribe", "resume"];

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
    /// The actions clients send: a bundled one by name, or a route with its own code.
    #[serde(default = "default_routes")]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Who may connect; without it anyone who knows the URL may.
    #[serde(default)]
    pub auth: Option<Auth>,
    #[serde(default)]
    pub alarms: Option<Alarms>,
    /// Serve the API on a custom domain (`wss://{name}`) instead of its execute-api address.
    #[serde(default)]
    pub domain: Option<Domain>,
    /// Who may reach the API's own (execute-api) endpoint: `ipv4` clients only, API Gateway's
    /// default, or `dualstack`, IPv4 and IPv6. A custom domain is always dualstack.
    #[serde(default)]
    pub ip_address_type: IpAddressType,
    /// Request limits of the stage (its default route settings), and per route key overrides;
    /// without it only API Gateway's account-wide quota applies.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// Access logs of the stage, one JSON line per request, in the log group
    /// `/aws/apigateway/{name}-{stage}-access`. On unless `false`; they need the account's API
    /// Gateway CloudWatch Logs role (`up --set-account-logging-role` sets one up).
    #[serde(default = "default_true")]
    pub access_logs: bool,
    /// What each stream (an entity's events, a user's notifications) keeps for clients that
    /// reconnect: pushes carry `seq`, and `subscribe` with `since` (an entity's events) and `resume`
    /// (the signed-in user's notifications) replay what a client missed.
    #[serde(default)]
    pub history: History,
}

/// The recent events each stream keeps (README, "Nothing missed").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// How long an event stays replayable, in seconds; 0 turns history off (pushes carry no `seq`).
    #[schemars(range(min = 0, max = 86_400))]
    pub window_seconds: u32,
    /// The most events one `subscribe` or `resume` with `since` replays; a client that missed more
    /// resyncs.
    #[schemars(range(min = 1, max = 10_000))]
    pub max_replay: u32,
}

impl Default for History {
    fn default() -> Self {
        History {
            window_seconds: 300,
            max_replay: 1_000,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `throttle:`: the stage's token bucket, refilled at `rate` requests per second and holding at
/// most `burst`; `routes` gives a route key (`$connect`, `$disconnect`, `subscribe`, an own route,
/// `$default`) its own bucket.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Steady requests per second (API Gateway's ThrottlingRateLimit).
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub rate: f64,
    /// Requests at once above the rate (ThrottlingBurstLimit).
    #[schemars(range(min = 0, max = 5000))]
    pub burst: u32,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteThrottle>,
}

/// One route key's limits under `throttle.routes`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteThrottle {
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub rate: f64,
    #[schemars(range(min = 0, max = 5000))]
    pub burst: u32,
}

/// `ip_address_type`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpAddressType {
    #[default]
    Ipv4,
    Dualstack,
}

impl IpAddressType {
    /// API Gateway's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
            IpAddressType::Dualstack => "dualstack",
        }
    }
}

/// `domain:`: the name clients connect to, the Route 53 zone its records go in, and optionally a
/// certificate of the user's; without one `up` requests one from ACM and validates it by DNS.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// A lowercase DNS name of two labels or more, e.g. `ws.example.com`.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
    )]
    pub name: String,
    /// The id of the Route 53 public hosted zone the name is in (capitals and digits).
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,32}$"))]
    pub hosted_zone_id: String,
    /// An ISSUED ACM certificate of the stack's region that covers `name`; `down` never deletes it.
    #[serde(default)]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$"))]
    pub certificate_arn: Option<String>,
    /// Replace A or AAAA records already at `name` that are not this stack's (an address, an
    /// alias elsewhere): `up` refuses to otherwise, since `down` would then delete them.
    #[serde(default)]
    pub take_over_records: bool,
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
    /// https, or plain http to 127.0.0.1, localhost or [::1] (a local provider for `wsstack dev`).
    #[serde(default)]
    #[schemars(regex(pattern = r"^(https://[^/?#\s]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?([/?#]|$))"))]
    pub jwks_url: Option<String>,
    #[serde(default = "default_user_claim")]
    #[schemars(length(min = 1))]
    pub user_claim: String,
    #[serde(default = "default_entities_claim")]
    #[schemars(length(min = 1))]
    pub entities_claim: String,
    /// What a token without the entities claim may subscribe to: `none` (the default; user
    /// notifications still arrive) or `all`. OpenID tokens rarely carry the claim: `all` lets every
    /// user of the issuer subscribe to every entity, other users' included.
    #[serde(default)]
    pub entities_when_unclaimed: EntitiesWhenUnclaimed,
    /// Longest lifetime (`exp - iat`) of a token the authorizer accepts, in seconds (default one
    /// day); also how long the previous key stays valid after `wsstack rotate-secret`.
    #[serde(default = "default_max_token_lifetime_seconds")]
    #[schemars(range(min = 5, max = 2_592_000))]
    pub max_token_lifetime_seconds: u32,
}

/// `auth.entities_when_unclaimed`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntitiesWhenUnclaimed {
    #[default]
    None,
    All,
}

/// Bounds of `auth.max_token_lifetime_seconds`: a few seconds (tests of the rotation window) to 30
/// days.
pub const MAX_TOKEN_LIFETIME_RANGE: (u32, u32) = (5, 2_592_000);

fn default_max_token_lifetime_seconds() -> u32 {
    wsstack_handlers::auth::token::DEFAULT_MAX_LIFETIME_SECONDS as u32
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
    /// The detail-type of an entity update: pushed to the entity's subscribers.
    #[schemars(length(min = 1, max = 128))]
    pub detail_type: String,
    /// The detail-type of a user notification (detail `{userId, message, callback?}`): pushed to
    /// every open connection of that user. Must differ from `detail_type`.
    #[schemars(length(min = 1, max = 128))]
    pub user_detail_type: String,
    /// The event source the rule matches; without it, `wsstack.{name}.{stage}`, so that each
    /// stage of each stack takes only the events addressed to it. `aws.` sources belong to AWS.
    #[schemars(length(min = 1, max = 256))]
    pub source: Option<String>,
    /// Whether this stack's rule may take the same events as another wsstack stack's rule on the
    /// bus (two stacks or stages deliberately fed by one producer). Without it, `up` refuses a rule
    /// whose pattern overlaps another wsstack stack's.
    pub shared: bool,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            bus: "default".into(),
            detail_type: DEFAULT_ENTITY_DETAIL_TYPE.into(),
            user_detail_type: DEFAULT_USER_DETAIL_TYPE.into(),
            source: None,
            shared: false,
        }
    }
}

/// The first part of the source a stage listens to when the stack file names none:
/// `wsstack.{name}.{stage}`.
pub const DEFAULT_EVENT_SOURCE_PREFIX: &str = "wsstack";

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
    /// The most subscriptions one connection may hold; `subscribe` answers an error frame past it.
    pub max_subscriptions_per_connection: u32,
    pub push: Push,
}

/// How the push function fans out at scale (see the README, "Fan-out at scale").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Push {
    /// The most connections in one chunk. An event with more subscribers than the invocation that
    /// reads it posts itself is split into chunks (one per invocation the chunk queue may run at
    /// once when each gets a tenth of a second of posts, more where they would be larger than
    /// this), sent to the chunk queue and delivered by one invocation each.
    pub chunk_size: u32,
    /// PostToConnection calls per second for the whole stack. API Gateway's quota (10,000 requests
    /// per second per account and region, 2,500 in some) is shared by every API of the account.
    pub max_posts_per_second: u32,
    /// Push invocations at once from each of the two queues (the event sources' ScalingConfig
    /// MaximumConcurrency). The budget is divided between them: see [`Push::chunk_posts_per_second`].
    pub max_concurrency: u32,
}

/// The share of the post budget kept for events an invocation of the events queue posts itself
/// (those with a few subscribers, so that they never wait behind a large fan-out); the rest goes to
/// the invocations of the chunk queue.
pub const DIRECT_SHARE: f64 = 0.05;

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
    /// The rate of one invocation of the chunk queue, posts per second: together they take all of
    /// the budget but [`DIRECT_SHARE`].
    pub fn chunk_posts_per_second(&self) -> f64 {
        f64::from(self.max_posts_per_second) * (1.0 - DIRECT_SHARE) / f64::from(self.max_concurrency.max(1))
    }

    /// The rate of one invocation of the events queue for the events it posts itself.
    pub fn direct_posts_per_second(&self) -> f64 {
        f64::from(self.max_posts_per_second) * DIRECT_SHARE / f64::from(self.max_concurrency.max(1))
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
            max_subscriptions_per_connection: wsstack_handlers::records::DEFAULT_MAX_SUBSCRIPTIONS,
            push: Push::default(),
        }
    }
}

fn default_stage() -> String {
    "dev".into()
}

fn default_routes() -> Vec<Route> {
    KNOWN_ROUTES.iter().map(|r| Route::Bundled(r.to_string())).collect()
}

/// The route key that catches frames whose action no other route takes.
pub const DEFAULT_ROUTE: &str = "$default";

/// One entry of `routes:`: a bundled handler by name (`subscribe`), or a route served by the
/// team's own code (`{name: sendMessage, code: ./send.zip}`).
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Route {
    Bundled(String),
    Own(OwnRoute),
}

/// By hand rather than `untagged`: a map is an own route, and its errors (an unknown field, a
/// wrong type) are reported as such, at the entry, instead of "did not match any variant".
impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Route, D::Error> {
        struct RouteVisitor;
        impl<'de> serde::de::Visitor<'de> for RouteVisitor {
            type Value = Route;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a bundled route's name, or a route with its own code ({name, code} or {name, bootstrap})")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Route, E> {
                Ok(Route::Bundled(name.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Route, A::Error> {
                OwnRoute::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Route::Own)
            }
        }
        deserializer.deserialize_any(RouteVisitor)
    }
}

/// A route with its own Lambda code for the `provided.al2023` runtime: exactly one of `code` (a
/// zip with `bootstrap` at its root) or `bootstrap` (the executable itself), relative to the
/// stack file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnRoute {
    /// The action clients send (`{"action": "sendMessage"}`), or `$default` for every frame no
    /// other route takes.
    #[schemars(regex(pattern = r"^(\$default|[A-Za-z][A-Za-z0-9_-]{0,39})$"))]
    pub name: String,
    #[serde(default)]
    pub code: Option<PathBuf>,
    #[serde(default)]
    pub bootstrap: Option<PathBuf>,
    /// The JSON Schema of the frames this route takes (for `wsstack asyncapi`).
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// Two-way: the `body` the route's function returns is sent back to the client (`up` gives
    /// the route a route response). Without it the route is one-way, as on API Gateway: the
    /// function answers clients only by posting to their connections.
    #[serde(default)]
    pub replies: bool,
    /// The deployment package, read when the stack file is loaded.
    #[serde(skip)]
    pub package: Option<Package>,
}

/// An own route's zip as Lambda gets it, and its CodeSha256.
#[derive(Debug, Clone)]
pub struct Package {
    pub zip: Arc<[u8]>,
    pub sha256: String,
}

impl PartialEq for Package {
    fn eq(&self, other: &Package) -> bool {
        self.sha256 == other.sha256
    }
}

impl Route {
    /// The route key clients select with `action` (or `$default`).
    pub fn name(&self) -> &str {
        match self {
            Route::Bundled(name) => name,
            Route::Own(own) => &own.name,
        }
    }

    pub fn own(&self) -> Option<&OwnRoute> {
        match self {
            Route::Bundled(_) => None,
            Route::Own(own) => Some(own),
        }
    }
}

impl PartialEq<&str> for Route {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Route::Bundled(name) if name == other)
    }
}

impl Stack {
    /// The routes served by the team's own code.
    pub fn own_routes(&self) -> impl Iterator<Item = &OwnRoute> {
        self.routes.iter().filter_map(Route::own)
    }

    /// Whether the bundled route `name` is listed.
    pub fn has_bundled_route(&self, name: &str) -> bool {
        self.routes.iter().any(|r| r == &name)
    }
}
