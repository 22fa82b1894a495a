//! From verified claims to who is connecting: the user id (claim `sub` by default) and the entity
//! patterns the connection may subscribe to (claim `entities`, a list of globs; a token without it
//! may subscribe to nothing unless the stack opts in). Also the authorizer context that carries
//! both to every route, and reading it back there.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::glob;
use super::token::{Claims, Refusal};

/// Key of the authorizer context holding the user id.
pub const CONTEXT_USER_ID: &str = "userId";
/// Key of the authorizer context holding the allowed entity patterns, as a JSON array in a string
/// (API Gateway context values must be strings, numbers or booleans).
pub const CONTEXT_ENTITIES: &str = "entities";
/// Longest user id accepted, in characters.
pub const MAX_USER_ID_CHARS: usize = 256;
/// Most entity patterns one token may carry.
pub const MAX_PATTERNS: usize = 100;

/// Which claims hold the user id and the entity patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub user: String,
    pub entities: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            user: "sub".to_string(),
            entities: "entities".to_string(),
        }
    }
}

/// What a token without the entities claim may subscribe to (`auth.entities_when_unclaimed`).
/// OpenID issuers practically never put the claim in their tokens, so "anything" would let every
/// user of the issuer subscribe to every entity, other users' included: nothing is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnclaimedEntities {
    /// No entity subscriptions (user notifications still arrive: they follow the user id).
    #[default]
    None,
    /// Every entity, as if the token claimed `["*"]`.
    All,
}

/// Who a connection belongs to and what it may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// Glob patterns; a token without the entities claim gets none, or `["*"]` when the stack
    /// opts in ([`UnclaimedEntities::All`]).
    pub entities: Vec<String>,
}

impl Identity {
    /// The identity in `claims`. A missing or ill-typed user claim, or an entities claim that is not
    /// a list of usable patterns, refuses the token rather than guessing; a missing one gives
    /// what `unclaimed` says.
    pub fn from_claims(claims: &Claims, names: &ClaimNames, unclaimed: UnclaimedEntities) -> Result<Identity, Refusal> {
        let user_id = match claims.get(&names.user) {
            Some(Value::String(user_id)) => user_id.clone(),
            Some(_) => return Err(Refusal::BadClaims(format!("claim {} is not a string", names.user))),
            None => return Err(Refusal::BadClaims(format!("claim {} is missing", names.user))),
        };
        if let Some(problem) = user_id_problem(&user_id) {
            return Err(Refusal::BadClaims(format!("claim {}: {problem}", names.user)));
        }
        let entities = match claims.get(&names.entities) {
            None | Some(Value::Null) => match unclaimed {
                UnclaimedEntities::None => Vec::new(),
                UnclaimedEntities::All => vec!["*".to_string()],
            },
            Some(Value::Array(patterns)) => {
                let patterns = patterns
                    .iter()
                    .map(|pattern| match pattern {
                        Value::String(pattern) => Ok(pattern.clone()),
                        _ => Err(Refusal::BadClaims(format!(
                            "claim {} must be a list of strings",
                            names.entities
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                check_patterns(&patterns)
                    .map_err(|problem| Refusal::BadClaims(format!("claim {}: {problem}", names.entities)))?;
                patterns
            }
            Some(_) => {
                return Err(Refusal::BadClaims(format!(
                    "claim {} must be a list of strings",
                    names.entities
                )))
            }
        };
        Ok(Identity { user_id, entities })
    }

    /// Whether this connection may subscribe to `entity_id`.
    pub fn allows(&self, entity_id: &str) -> bool {
        self.entities.iter().any(|pattern| glob::matches(pattern, entity_id))
    }

    /// The authorizer's `context`: string values only.
    pub fn context(&self) -> Map<String, Value> {
        let entities = serde_json::to_string(&self.entities).expect("a list of strings always serializes");
        Map::from_iter([
            (CONTEXT_USER_ID.to_string(), Value::String(self.user_id.clone())),
            (CONTEXT_ENTITIES.to_string(), Value::String(entities)),
        ])
    }

    /// The identity a route's `requestContext.authorizer` carries: `None` when the stack has no
    /// authorizer (no user id in the context). A user id with unreadable entities allows none,
    /// so a damaged context can only narrow what a connection may do.
    pub fn from_context(fields: &HashMap<String, Value>) -> Option<Identity> {
        let user_id = match fields.get(CONTEXT_USER_ID) {
            Some(Value::String(user_id)) if !user_id.is_empty() => user_id.clone(),
            _ => return None,
        };
        let entities = match fields.get(CONTEXT_ENTITIES) {
            Some(Value::String(encoded)) => serde_json::from_str::<Vec<String>>(encoded).unwrap_or_default(),
            _ => Vec::new(),
        };
        Some(Identity { user_id, entities })
    }
}

/// Why `user_id` cannot be a user id, or `None`.
pub fn user_id_problem(user_id: &str) -> Option<String> {
    if user_id.is_empty() {
        return Some("the user id is empty".to_string());
    }
    if user_id.chars().count() > MAX_USER_ID_CHARS {
        return Some(format!("the user id is longer than {MAX_USER_ID_CHARS} characters"));
    }
    if user_id.chars().any(char::is_control) {
        return Some("the user id contains control characters".to_string());
    }
    None
}

/// Checks a list of entity patterns (from a token, or for one about to be minted).
pub fn check_patterns(patterns: &[String]) -> Result<(), String> {
    if patterns.len() > MAX_PATTERNS {
        return Err(format!("more than {MAX_PATTERNS} entity patterns"));
    }
    match patterns.iter().find_map(|pattern| glob::pattern_problem(pattern)) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn user_and_entities_come_from_the_configured_claims() {
        let names = ClaimNames {
            user: "uid".into(),
            entities: "allowed".into(),
        };
        let identity = Identity::from_claims(
            &claims(json!({"uid": "u-1", "allowed": ["order-*"]})),
            &names,
            UnclaimedEntities::All,
        )
        .unwrap();
        assert_eq!(identity.user_id, "u-1");
        assert!(identity.allows("order-7"));
        assert!(!identity.allows("user-7"));
    }

    #[test]
    fn a_token_without_entities_may_subscribe_to_nothing_unless_the_stack_opts_in() {
        let unclaimed = claims(json!({"sub": "u"}));
        let identity = Identity::from_claims(&unclaimed, &ClaimNames::default(), UnclaimedEntities::None).unwrap();
        assert!(identity.entities.is_empty());
        assert!(!identity.allows("whatever") && !identity.allows("user-u"));
        assert_eq!(identity.context()[CONTEXT_ENTITIES], json!("[]"));
        assert_eq!(UnclaimedEntities::default(), UnclaimedEntities::None);

        let identity = Identity::from_claims(&unclaimed, &ClaimNames::default(), UnclaimedEntities::All).unwrap();
        assert_eq!(identity.entities, vec!["*"]);
        assert!(identity.allows("whatever"));

        // A claim that is there, even empty, is what the token says whatever the stack's choice.
        let empty = claims(json!({"sub": "u", "entities": []}));
        let identity = Identity::from_claims(&empty, &ClaimNames::default(), UnclaimedEntities::All).unwrap();
        assert!(!identity.allows("whatever"));
    }

    #[test]
    fn bad_user_or_entities_claims_refuse_the_token() {
        let names = ClaimNames::default();
        for bad in [
            json!({}),
            json!({"sub": 42}),
            json!({"sub": ""}),
            json!({"sub": "u", "entities": "order-*"}),
            json!({"sub": "u", "entities": ["ok", 3]}),
            json!({"sub": "u", "entities": [""]}),
        ] {
            assert!(
                matches!(
                    Identity::from_claims(&claims(bad.clone()), &names, UnclaimedEntities::All),
                    Err(Refusal::BadClaims(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_context_round_trips_and_a_damaged_one_allows_nothing() {
        let identity = Identity {
            user_id: "u-9".into(),
            entities: vec!["order-*".into(), "user-9".into()],
        };
        let context: HashMap<String, Value> = identity.context().into_iter().collect();
        assert_eq!(context[CONTEXT_ENTITIES], json!(r#"["order-*","user-9"]"#));
        assert_eq!(Identity::from_context(&context), Some(identity));

        let damaged = HashMap::from([
            (CONTEXT_USER_ID.to_string(), json!("u-9")),
            (CONTEXT_ENTITIES.to_string(), json!("not json")),
        ]);
        let identity = Identity::from_context(&damaged).unwrap();
        assert!(!identity.allows("order-1"));
        assert_eq!(Identity::from_context(&HashMap::new()), None);
    }
}
