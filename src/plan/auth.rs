//! The resources of `auth:`: the authorizer function with its role, log group and permission, the
//! API authorizer on `$connect`, and the stack's secret; retired when `auth:` is gone. Pure: no
//! AWS calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::policies::log_statement;
use super::{route_key, tags};
use crate::aws::Aws;
use crate::bundle::Bundle;
use crate::graph::Key;
use crate::names::{Arns, Names, RoleKind, AUTHORIZER};
use crate::resources::authorizer::AuthorizerSpec;
use crate::resources::permission::PermissionSpec;
use crate::resources::role::RoleSpec;
use crate::resources::secret::SecretSpec;
use crate::resources::{Resource, Retired};
use crate::stack::{EntitiesWhenUnclaimed, Stack, Trust, DEFAULT_ENTITIES_CLAIM, DEFAULT_USER_CLAIM};
use wsstack_handlers::auth::token::DEFAULT_MAX_LIFETIME_SECONDS;

/// The authorizer function's policy: its own logs, and (with the stack's secret) reading that one
/// secret, whichever version stage (AWSCURRENT, AWSPREVIOUS after a rotation): GetSecretValue
/// with a VersionStage is the same action.
fn authorizer_policy(stack: &Stack, names: &Names, arns: &Arns, _api: &str) -> Value {
    let mut statements = vec![log_statement(names, arns, &[AUTHORIZER])];
    if stack.auth.as_ref().is_some_and(|a| a.trust() == Trust::Secret) {
        statements.push(json!({
            "Sid": "ReadTheStackKey",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [arns.secret_pattern(&names.secret())]
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The authorizer's environment, as the bundled handler reads it; the claims, the unclaimed
/// entities rule and the maximum lifetime only when the stack differs from the handler's defaults.
fn authorizer_environment(stack: &Stack, names: &Names) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    environment.insert("WSSTACK_HANDLER".to_string(), AUTHORIZER.to_string());
    let Some(auth) = &stack.auth else {
        return environment;
    };
    match auth.trust() {
        // GetSecretValue takes the name as well as the ARN; the ARN's random suffix is only known
        // once the secret exists.
        Trust::Secret => environment.insert("AUTH_SECRET_ARN".into(), names.secret()),
        Trust::Issuer {
            issuer,
            audience,
            jwks_url,
        } => {
            environment.insert("AUTH_AUDIENCE".into(), audience.to_string());
            if let Some(url) = jwks_url {
                environment.insert("AUTH_JWKS_URL".into(), url.to_string());
            }
            environment.insert("AUTH_ISSUER".into(), issuer.to_string())
        }
    };
    if auth.user_claim != DEFAULT_USER_CLAIM {
        environment.insert("AUTH_USER_CLAIM".into(), auth.user_claim.clone());
    }
    if auth.entities_claim != DEFAULT_ENTITIES_CLAIM {
        environment.insert("AUTH_ENTITIES_CLAIM".into(), auth.entities_claim.clone());
    }
    if auth.entities_when_unclaimed == EntitiesWhenUnclaimed::All {
        environment.insert("AUTH_ENTITIES_WHEN_UNCLAIMED".into(), "all".into());
    }
    if u64::from(auth.max_token_lifetime_seconds) != DEFAULT_MAX_LIFETIME_SECONDS {
        environment.insert(
            "AUTH_MAX_TOKEN_LIFETIME_SECONDS".into(),
            auth.max_token_lifetime_seconds.to_string(),
        );
    }
    environment
}

/// The authorizer on `$connect`: its function, log group, role and permission, the API
/// authorizer, and the secret when the stack signs its own tokens. Without `auth:` the same
/// resources come retired, so that `up` and `down` take away what an earlier `auth:` made.
pub(super) fn resources(stack: &Stack, aws: &Aws, bundle: Option<&Bundle>) -> Vec<Arc<dyn Resource>> {
    let names = &aws.names;
    let tags = tags(stack);
    let function = names.function(AUTHORIZER);
    let with_secret = stack.auth.as_ref().is_none_or(|a| a.trust() == Trust::Secret);
    let (stack_for_policy, names_for_policy, arns) = (stack.clone(), names.clone(), aws.arns.clone());
    let role = RoleSpec {
        role: RoleKind::Authorizer,
        name: names.role(RoleKind::Authorizer),
        description: format!("wsstack {}/{}: $connect authorizer", stack.name, stack.stage),
        policy: Arc::new(move |api: &str| authorizer_policy(&stack_for_policy, &names_for_policy, &arns, api)),
        tags: tags.clone(),
    };
    let description = format!("wsstack {}/{}: $connect authorizer", stack.name, stack.stage);
    let environment = authorizer_environment(stack, names);
    let (log_group, mut function_spec) = super::pieces::function_and_logs(
        stack,
        aws,
        AUTHORIZER,
        RoleKind::Authorizer,
        description,
        environment,
        bundle.cloned(),
    );
    // It verifies one token per handshake: the smallest size does it in milliseconds.
    function_spec.memory_mb = 128;
    function_spec.timeout_seconds = 10;
    let permission = PermissionSpec {
        handler: AUTHORIZER.to_string(),
        function: function.clone(),
        stage: stack.stage.clone(),
        route_key: route_key("connect"),
        authorizer: true,
    };
    let authorizer = AuthorizerSpec {
        name: names.authorizer(),
        uri: aws.arns.function_invocation(&function),
        secret: with_secret && stack.auth.is_some(),
    };
    let secret = SecretSpec {
        name: names.secret(),
        description: format!(
            "wsstack {}/{}: the HS256 key of the stack's connection tokens",
            stack.name, stack.stage
        ),
        tags,
    };
    if stack.auth.is_some() {
        let mut resources: Vec<Arc<dyn Resource>> = vec![
            Arc::new(role.policy_resource()),
            Arc::new(role),
            Arc::new(log_group),
            Arc::new(function_spec),
            Arc::new(permission),
            Arc::new(authorizer),
        ];
        if with_secret {
            resources.push(Arc::new(secret));
        }
        return resources;
    }
    // Taken down after `$connect` stops requiring the authorizer, in the reverse of the order
    // they go up in.
    let retired = |inner: Arc<dyn Resource>, after: Key| -> Arc<dyn Resource> {
        Arc::new(Retired {
            depends_on: vec![after],
            inner,
        })
    };
    let function_key = Key::function(AUTHORIZER);
    vec![
        retired(Arc::new(authorizer), Key::route("connect")),
        retired(Arc::new(permission), Key::authorizer().retired()),
        retired(Arc::new(function_spec), Key::permission(AUTHORIZER).retired()),
        retired(Arc::new(log_group), function_key.clone().retired()),
        retired(Arc::new(role), function_key.clone().retired()),
        retired(Arc::new(secret), function_key.retired()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Discovered;
    use crate::plan::Inputs;

    #[test]
    fn auth_resources_exist_with_auth_and_retire_only_when_something_is_left() {
        let parse = |text: &str| crate::stack::parse(std::path::Path::new("s.yaml"), text).unwrap();
        let open = parse("name: demo\n");
        let aws = Aws::offline(crate::names::Names::new(&open, "eu-west-1"));
        let keys = |stack: &Stack, found: &Discovered| -> Vec<String> {
            let inputs = Inputs {
                bundle: None,
                found,
                dev_paused: &[],
            };
            let all = super::super::resources(stack, &aws, inputs);
            let auth: Vec<String> = all.iter().map(|r| r.key().to_string()).collect();
            auth.into_iter()
                .filter(|k| k.contains("authorizer") || k.contains("secret"))
                .collect()
        };
        assert!(
            keys(&open, &Discovered::default()).is_empty(),
            "nothing to read for an open stack"
        );
        let left = Discovered {
            authorizer: Some("abc123".into()),
            ..Discovered::default()
        };
        assert_eq!(
            keys(&open, &left),
            [
                "retired/authorizer",
                "retired/permission/authorizer",
                "retired/function/authorizer",
                "retired/log-group/authorizer",
                "retired/role/authorizer",
                "retired/secret"
            ]
        );
        let secret = parse("name: demo\nauth:\n  secret: generated\n");
        // Role and its policy, log group, function, permission, authorizer, secret.
        assert_eq!(keys(&secret, &Discovered::default()).len(), 7);
        let issuer =
            parse("name: demo\nauth:\n  issuer: https://id.example.com\n  audience: app\n  user_claim: email\n");
        assert!(
            !keys(&issuer, &Discovered::default()).contains(&"secret".to_string()),
            "no secret for an issuer"
        );
        let environment = authorizer_environment(&issuer, &aws.names);
        assert_eq!(environment["AUTH_ISSUER"], "https://id.example.com");
        assert_eq!(environment["AUTH_AUDIENCE"], "app");
        assert_eq!(environment["AUTH_USER_CLAIM"], "email");
        assert!(!environment.contains_key("AUTH_SECRET_ARN") && !environment.contains_key("AUTH_ENTITIES_CLAIM"));
        assert!(
            !environment.contains_key("AUTH_ENTITIES_WHEN_UNCLAIMED")
                && !environment.contains_key("AUTH_MAX_TOKEN_LIFETIME_SECONDS"),
            "defaults are the handler's: {environment:?}"
        );
        let opted_in = parse(
            "name: demo\nauth:\n  secret: generated\n  entities_when_unclaimed: all\n  max_token_lifetime_seconds: 3600\n",
        );
        let environment = authorizer_environment(&opted_in, &aws.names);
        assert_eq!(environment["AUTH_ENTITIES_WHEN_UNCLAIMED"], "all");
        assert_eq!(environment["AUTH_MAX_TOKEN_LIFETIME_SECONDS"], "3600");
        let policy = authorizer_policy(&issuer, &aws.names, &aws.arns, "api").to_string();
        assert!(!policy.contains("secretsmanager"), "{policy}");
    }
}
