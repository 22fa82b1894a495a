//! What a handler process reads from its environment at init: the variables the stack sets at
//! deploy time (`WSSTACK_HANDLER`, `TABLE_NAME`, `TTL_HOURS`, `CALLBACK_URL`, optional push tuning)
//! parsed into [`Config`].
//!
//! The authorizer (`WSSTACK_HANDLER=authorizer`) reads [`AuthorizerConfig`] instead: either
//! `AUTH_SECRET_ARN` (a Secrets Manager secret whose SecretString is the HS256 key, at least 32
//! bytes), or `AUTH_ISSUER` with optional `AUTH_AUDIENCE` and `AUTH_JWKS_URL` (default
//! `{issuer}/.well-known/jwks.json`); and `AUTH_USER_CLAIM` (default `sub`), `AUTH_ENTITIES_CLAIM`
//! (default `entities`), `AUTH_ENTITIES_WHEN_UNCLAIMED` (`none`, the default, or `all`),
//! `AUTH_MAX_TOKEN_LIFETIME_SECONDS` (default 86400).

use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::auth::token::DEFAULT_MAX_LIFETIME_SECONDS;
use crate::auth::{ClaimNames, UnclaimedEntities};
use crate::frames::DetailTypes;
use crate::records::{DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_TTL_HOURS};

/// Which of the functions this process serves (five routes and push, plus the authorizer on a
/// stack with `auth:`); from `WSSTACK_HANDLER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    Connect,
    Disconnect,
    Subscribe,
    Unsubscribe,
    Resume,
    Push,
    Authorizer,
}

impl FromStr for HandlerKind {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> Result<Self> {
        Ok(match value {
            "connect" => HandlerKind::Connect,
            "disconnect" => HandlerKind::Disconnect,
            "subscribe" => HandlerKind::Subscribe,
            "unsubscribe" => HandlerKind::Unsubscribe,
            "resume" => HandlerKind::Resume,
            "push" => HandlerKind::Push,
            "authorizer" => HandlerKind::Authorizer,
            other => bail!(
                "unknown handler {other:?}: expected connect, disconnect, subscribe, unsubscribe, resume, push or authorizer"
            ),
        })
    }
}

/// How the push handler fans out, and which events it serves.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Posts in flight at once per invocation, whatever the number of records in the batch.
    pub concurrency: usize,
    /// Attempts per connection for 5xx, timeouts and network errors, first included. Throttled
    /// posts (429) are retried until the invocation's deadline nears instead.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each further one, with jitter.
    pub base_backoff: Duration,
    /// `ENTITY_DETAIL_TYPE` and `USER_DETAIL_TYPE`: the stack file's names of the two kinds of event.
    pub detail_types: DetailTypes,
    /// Chunking (`PUSH_CHUNK_SIZE`): an event with more recipients than the invocation that reads
    /// it posts itself is split into chunks of at most this many connections, each delivered by an
    /// invocation of its own; `None`: the invocation that reads an event posts it all.
    pub chunk_size: Option<usize>,
    /// Where chunks go (`PUSH_CHUNK_QUEUE_ARN`); `None`: back to the queue the event came from.
    pub chunk_queue_arn: Option<String>,
    /// Invocations of the chunk queue at once (`PUSH_MAX_CONCURRENCY`): an event is split into this
    /// many chunks, so that all of them post it, unless that would make chunks shorter than a tenth
    /// of a second of posts (see `division::chunk_length`).
    pub chunk_invocations: usize,
    /// An invocation's share of the stack's post budget for a chunk (`PUSH_POSTS_PER_SECOND`), and
    /// for everything when there is no direct rate; `None`: no limit.
    pub posts_per_second: Option<f64>,
    /// An invocation's share for the events it posts itself (`PUSH_DIRECT_POSTS_PER_SECOND`).
    pub direct_posts_per_second: Option<f64>,
    /// How long one post may take, connecting included, before it counts as a timeout (retryable).
    /// API Gateway may already have delivered a post that timed out, so the retry is a duplicate:
    /// tests that count duplicates on a starved machine set more than the 5 s default.
    pub post_timeout: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            concurrency: 64,
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            detail_types: DetailTypes::default(),
            chunk_size: None,
            chunk_queue_arn: None,
            chunk_invocations: 1,
            posts_per_second: None,
            direct_posts_per_second: None,
            post_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything a handler reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub ttl_hours: u32,
    /// Management API endpoint including the stage, e.g.
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub callback_url: String,
    pub push: PushSettings,
    /// `Limit` of each query page (subscribers, a connection's records); `None` lets DynamoDB fill
    /// 1 MB pages. Tests set it to prove paging.
    pub query_page_limit: Option<i32>,
    /// `MAX_SUBSCRIPTIONS`: the most subscriptions one connection may hold, so that a client cannot
    /// write records without end (its `$disconnect` deletes them all within its timeout).
    pub max_subscriptions: u32,
    /// `HISTORY_WINDOW_SECONDS`: how long each stream's events are kept for clients that resume;
    /// `None` (unset or 0): no history, and pushes carry no `seq`.
    pub history_window: Option<Duration>,
    /// `HISTORY_MAX_REPLAY`: the most events one `subscribe`/`resume` replays; more missed than
    /// that is a resync.
    pub max_replay: usize,
}

/// Default of `HISTORY_MAX_REPLAY`.
pub const DEFAULT_MAX_REPLAY: usize = 1000;

impl Config {
    /// Reads `TABLE_NAME`, `CALLBACK_URL`, `TTL_HOURS` (default 24) and the optional push tuning
    /// `PUSH_CONCURRENCY`, `PUSH_MAX_ATTEMPTS`, `PUSH_CHUNK_SIZE`, `PUSH_CHUNK_QUEUE_ARN`,
    /// `PUSH_MAX_CONCURRENCY`, `PUSH_POSTS_PER_SECOND`, `PUSH_DIRECT_POSTS_PER_SECOND`, and the
    /// push handler's `ENTITY_DETAIL_TYPE`, `USER_DETAIL_TYPE` (defaults `Entity Updated`, `Send User
    /// Push Notification`).
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let required = |name: &str| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| anyhow!("environment variable {name} is not set"))
        };
        let optional = |name: &str| lookup(name).filter(|value| !value.is_empty());
        fn parsed<T: FromStr>(name: &str, value: Option<String>, default: T) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                Some(value) => value
                    .parse()
                    .map_err(|error| anyhow!("environment variable {name}={value:?}: {error}")),
            }
        }
        // Unset, 0 or not a positive number: no limit.
        let rate = |name: &str| -> Result<Option<f64>> {
            Ok(Some(parsed(name, lookup(name), 0_f64)?).filter(|rate| rate.is_finite() && *rate > 0.0))
        };
        let defaults = PushSettings::default();
        let push = PushSettings {
            concurrency: parsed("PUSH_CONCURRENCY", lookup("PUSH_CONCURRENCY"), defaults.concurrency)?.max(1),
            max_attempts: parsed("PUSH_MAX_ATTEMPTS", lookup("PUSH_MAX_ATTEMPTS"), defaults.max_attempts)?.max(1),
            detail_types: DetailTypes {
                entity: optional("ENTITY_DETAIL_TYPE").unwrap_or(defaults.detail_types.entity.clone()),
                user: optional("USER_DETAIL_TYPE").unwrap_or(defaults.detail_types.user.clone()),
            },
            // Unset or 0: off.
            chunk_size: Some(parsed("PUSH_CHUNK_SIZE", lookup("PUSH_CHUNK_SIZE"), 0_usize)?).filter(|size| *size > 0),
            chunk_queue_arn: optional("PUSH_CHUNK_QUEUE_ARN"),
            chunk_invocations: parsed(
                "PUSH_MAX_CONCURRENCY",
                lookup("PUSH_MAX_CONCURRENCY"),
                defaults.chunk_invocations,
            )?
            .max(1),
            posts_per_second: rate("PUSH_POSTS_PER_SECOND")?,
            direct_posts_per_second: rate("PUSH_DIRECT_POSTS_PER_SECOND")?,
            ..defaults
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            ttl_hours: parsed("TTL_HOURS", lookup("TTL_HOURS"), DEFAULT_TTL_HOURS)?,
            callback_url: required("CALLBACK_URL")?,
            push,
            query_page_limit: None,
            max_subscriptions: parsed(
                "MAX_SUBSCRIPTIONS",
                lookup("MAX_SUBSCRIPTIONS"),
                DEFAULT_MAX_SUBSCRIPTIONS,
            )?
            .max(1),
            history_window: Some(parsed(
                "HISTORY_WINDOW_SECONDS",
                lookup("HISTORY_WINDOW_SECONDS"),
                0_u64,
            )?)
            .filter(|seconds| *seconds > 0)
            .map(Duration::from_secs),
            max_replay: parsed("HISTORY_MAX_REPLAY", lookup("HISTORY_MAX_REPLAY"), DEFAULT_MAX_REPLAY)?.max(1),
        })
    }
}

/// Which tokens the authorizer trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustConfig {
    /// HS256 with the stack's secret, read from Secrets Manager at init.
    Secret { secret_arn: String },
    /// RS256/ES256 from an OpenID issuer.
    Issuer {
        issuer: String,
        audience: Option<String>,
        jwks_url: String,
    },
}

/// Everything the authorizer reads from its environment (see the module doc for the names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub trust: TrustConfig,
    pub claims: ClaimNames,
    pub rules: TokenRules,
}

/// What the authorizer demands of a verified token beyond its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRules {
    /// Longest `exp - iat` accepted, and how long the previous stack key stays valid after a
    /// rotation.
    pub max_lifetime_seconds: u64,
    pub unclaimed_entities: UnclaimedEntities,
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules {
            max_lifetime_seconds: DEFAULT_MAX_LIFETIME_SECONDS,
            unclaimed_entities: UnclaimedEntities::None,
        }
    }
}

impl AuthorizerConfig {
    pub fn from_env() -> Result<AuthorizerConfig> {
        AuthorizerConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`AuthorizerConfig::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthorizerConfig> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let trust = match (set("AUTH_SECRET_ARN"), set("AUTH_ISSUER")) {
            (Some(secret_arn), None) => TrustConfig::Secret { secret_arn },
            (None, Some(issuer)) => {
                let jwks_url = set("AUTH_JWKS_URL")
                    .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
                TrustConfig::Issuer {
                    issuer,
                    audience: set("AUTH_AUDIENCE"),
                    jwks_url,
                }
            }
            (Some(_), Some(_)) => bail!("set AUTH_SECRET_ARN or AUTH_ISSUER, not both"),
            (None, None) => bail!("the authorizer needs AUTH_SECRET_ARN (stack secret) or AUTH_ISSUER (OpenID issuer)"),
        };
        let defaults = ClaimNames::default();
        let unclaimed_entities = match set("AUTH_ENTITIES_WHEN_UNCLAIMED").as_deref().map(str::trim) {
            None | Some("none") => UnclaimedEntities::None,
            Some("all") => UnclaimedEntities::All,
            Some(other) => bail!("environment variable AUTH_ENTITIES_WHEN_UNCLAIMED={other:?}: expected none or all"),
        };
        let max_lifetime_seconds = match set("AUTH_MAX_TOKEN_LIFETIME_SECONDS") {
            None => DEFAULT_MAX_LIFETIME_SECONDS,
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|seconds| *seconds > 0)
                .ok_or_else(|| {
                    anyhow!("environment variable AUTH_MAX_TOKEN_LIFETIME_SECONDS={value:?}: expected whole seconds above 0")
                })?,
        };
        Ok(AuthorizerConfig {
            trust,
            claims: ClaimNames {
                user: set("AUTH_USER_CLAIM").unwrap_or(defaults.user),
                entities: set("AUTH_ENTITIES_CLAIM").unwrap_or(defaults.entities),
            },
            rules: TokenRules {
                max_lifetime_seconds,
                unclaimed_entities,
            },
        })
    }
}

/// Parses `WSSTACK_HANDLER`.
pub fn handler_kind_from_env() -> Result<HandlerKind> {
    let value = std::env::var("WSSTACK_HANDLER").context("environment variable WSSTACK_HANDLER is not set")?;
    value.parse()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(variables: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(lookup(variables))
    }

    /// A variable lookup over `variables`, as the `from_lookup` functions take it.
    pub(crate) fn lookup(variables: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| variables.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_only_the_required_variables_are_set() {
        let config = config(&[("TABLE_NAME", "t"), ("CALLBACK_URL", "http://127.0.0.1:1/dev")]).unwrap();
        assert_eq!(config.table_name, "t");
        assert_eq!(config.ttl_hours, 24);
        assert_eq!(config.push.concurrency, 64);
        assert_eq!(config.push.max_attempts, 3);
        assert_eq!(config.push.chunk_size, None);
        assert_eq!(config.push.posts_per_second, None);
        assert_eq!(config.query_page_limit, None);
        assert_eq!(config.push.detail_types.entity, "Entity Updated");
        assert_eq!(config.push.detail_types.user, "Send User Push Notification");
    }

    #[test]
    fn chunking_and_the_post_budget_come_from_the_environment() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("PUSH_CHUNK_SIZE", "1000"),
            (
                "PUSH_CHUNK_QUEUE_ARN",
                "arn:aws:sqs:eu-west-1:123456789012:demo-dev-chunks",
            ),
            ("PUSH_MAX_CONCURRENCY", "5"),
            ("PUSH_POSTS_PER_SECOND", "380"),
            ("PUSH_DIRECT_POSTS_PER_SECOND", "20"),
        ])
        .unwrap();
        assert_eq!(config.push.chunk_size, Some(1000));
        assert_eq!(
            config.push.chunk_queue_arn.as_deref(),
            Some("arn:aws:sqs:eu-west-1:123456789012:demo-dev-chunks")
        );
        assert_eq!(config.push.chunk_invocations, 5);
        assert_eq!(config.push.posts_per_second, Some(380.0));
        assert_eq!(config.push.direct_posts_per_second, Some(20.0));
        let error = self::config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("PUSH_CHUNK_SIZE", "many"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("PUSH_CHUNK_SIZE=\"many\""), "{error}");
    }

    #[test]
    fn missing_or_malformed_variables_are_named() {
        let error = config(&[("CALLBACK_URL", "http://x/dev")]).unwrap_err();
        assert!(error.to_string().contains("TABLE_NAME"), "{error}");
        let error = config(&[("TABLE_NAME", "t")]).unwrap_err();
        assert!(error.to_string().contains("CALLBACK_URL"), "{error}");
        let error = config(&[
            ("TABLE_NAME", "t"),
            ("CALLBACK_URL", "http://x/dev"),
            ("TTL_HOURS", "a day"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("TTL_HOURS=\"a day\""), "{error}");
    }

    #[test]
    fn handler_names_parse() {
        assert_eq!("push".parse::<HandlerKind>().unwrap(), HandlerKind::Push);
        assert_eq!("connect".parse::<HandlerKind>().unwrap(), HandlerKind::Connect);
        assert_eq!("resume".parse::<HandlerKind>().unwrap(), HandlerKind::Resume);
        assert!("Push".parse::<HandlerKind>().is_err());
        assert_eq!("authorizer".parse::<HandlerKind>().unwrap(), HandlerKind::Authorizer);
    }

    fn authorizer_config(variables: &[(&str, &str)]) -> Result<AuthorizerConfig> {
        AuthorizerConfig::from_lookup(lookup(variables))
    }

    #[test]
    fn the_authorizer_trusts_a_secret_or_an_issuer_never_both() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wsstack-dev-auth-AbCdEf";
        let config = authorizer_config(&[("AUTH_SECRET_ARN", arn)]).unwrap();
        assert_eq!(config.trust, TrustConfig::Secret { secret_arn: arn.into() });
        assert_eq!(config.claims, ClaimNames::default());

        let config = authorizer_config(&[
            ("AUTH_ISSUER", "https://issuer.example.com/pool/"),
            ("AUTH_AUDIENCE", "client-1"),
            ("AUTH_USER_CLAIM", "username"),
        ])
        .unwrap();
        assert_eq!(
            config.trust,
            TrustConfig::Issuer {
                issuer: "https://issuer.example.com/pool/".into(),
                audience: Some("client-1".into()),
                jwks_url: "https://issuer.example.com/pool/.well-known/jwks.json".into(),
            }
        );
        assert_eq!(config.claims.user, "username");
        assert_eq!(config.claims.entities, "entities");

        let error = authorizer_config(&[("AUTH_SECRET_ARN", arn), ("AUTH_ISSUER", "https://i")]).unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
        let error = authorizer_config(&[]).unwrap_err();
        assert!(error.to_string().contains("AUTH_SECRET_ARN"), "{error}");
    }

    #[test]
    fn token_rules_default_to_no_unclaimed_entities_and_a_day() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s";
        let config = authorizer_config(&[("AUTH_SECRET_ARN", arn)]).unwrap();
        assert_eq!(config.rules, TokenRules::default());
        assert_eq!(config.rules.unclaimed_entities, UnclaimedEntities::None);
        assert_eq!(config.rules.max_lifetime_seconds, 86_400);
        let config = authorizer_config(&[
            ("AUTH_SECRET_ARN", arn),
            ("AUTH_ENTITIES_WHEN_UNCLAIMED", "all"),
            ("AUTH_MAX_TOKEN_LIFETIME_SECONDS", "600"),
        ])
        .unwrap();
        assert_eq!(config.rules.unclaimed_entities, UnclaimedEntities::All);
        assert_eq!(config.rules.max_lifetime_seconds, 600);
        for (name, value) in [
            ("AUTH_ENTITIES_WHEN_UNCLAIMED", "any"),
            ("AUTH_MAX_TOKEN_LIFETIME_SECONDS", "0"),
            ("AUTH_MAX_TOKEN_LIFETIME_SECONDS", "1d"),
        ] {
            let error = authorizer_config(&[("AUTH_SECRET_ARN", arn), (name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
