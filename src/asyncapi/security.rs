//! The security section of the AsyncAPI document for a stack with `auth:`: how a client presents
//! its token on the handshake, and whom the token must come from, added to what `document` builds. Pure.
//!
//! AsyncAPI 3.0 lists a server's `security` as alternatives (any one suffices), which is exactly
//! the two ways the authorizer reads a token; `httpApiKey` is the scheme type for a value in a
//! named query parameter or header. `openIdConnect` would tell clients to send an OAuth bearer
//! token, which API Gateway WebSocket handshakes do not carry, so the issuer goes in the text.

use serde_json::{json, Value};

use crate::stack::{Auth, Stack, Trust};

/// With `auth:`, adds `components.securitySchemes` and the websocket server's `security`.
pub(super) fn extend(document: &mut Value, stack: &Stack) {
    let Some(auth) = &stack.auth else {
        return;
    };
    let token = token_description(auth);
    document["components"]["securitySchemes"] = json!({
        "accessTokenQuery": {
            "type": "httpApiKey",
            "in": "query",
            "name": "access_token",
            "description": format!("{token} Sent as `?access_token=<token>` on the connection URL."),
        },
        "accessTokenProtocol": {
            "type": "httpApiKey",
            "in": "header",
            "name": "Sec-WebSocket-Protocol",
            "description": format!(
                "{token} Sent as `Sec-WebSocket-Protocol: websocket, <token>` (what browsers can set); \
                 the server answers with the `websocket` subprotocol."
            ),
        },
    });
    document["servers"]["websocket"]["security"] = json!([
        {"$ref": "#/components/securitySchemes/accessTokenQuery"},
        {"$ref": "#/components/securitySchemes/accessTokenProtocol"},
    ]);
}

/// What a valid token is, for the scheme descriptions.
fn token_description(auth: &Auth) -> String {
    let claims = format!(
        "The user is its `{}` claim; its optional `{}` claim (a list of glob patterns) limits the entities \
         the connection may subscribe to. A missing, expired or invalid token: the handshake is refused with 401.",
        auth.user_claim, auth.entities_claim
    );
    match auth.trust() {
        Trust::Secret => {
            format!("A JWT signed (HS256) with the stack's own secret: `wsstack token --user-id U` makes one. {claims}")
        }
        Trust::Issuer {
            issuer,
            audience,
            jwks_url,
        } => {
            let keys = jwks_url
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
            format!(
                "A JWT (RS256 or ES256) from the OpenID issuer `{issuer}` (its `iss`, exactly), for the audience \
                 `{audience}` (its `aud`), signed with a key of {keys}. {claims}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{document, Address};

    fn document_of(text: &str) -> serde_json::Value {
        let stack = crate::stack::parse(std::path::Path::new("stack.yaml"), text).unwrap();
        let address = Address::Template {
            dns_suffix: "amazonaws.com".into(),
        };
        document(&stack, Some("eu-west-1"), &address)
    }

    #[test]
    fn a_stack_with_auth_names_both_ways_of_sending_the_token() {
        let doc = document_of("name: demo\nauth:\n  secret: generated\n");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(
            (&schemes["accessTokenQuery"]["in"], &schemes["accessTokenQuery"]["name"]),
            (&"query".into(), &"access_token".into())
        );
        assert_eq!(
            (
                &schemes["accessTokenProtocol"]["in"],
                &schemes["accessTokenProtocol"]["name"]
            ),
            (&"header".into(), &"Sec-WebSocket-Protocol".into())
        );
        assert!(schemes["accessTokenQuery"]["description"]
            .as_str()
            .unwrap()
            .contains("wsstack token"));
        let security = doc["servers"]["websocket"]["security"].as_array().unwrap();
        assert_eq!(security.len(), 2);
        assert!(doc["servers"]["eventbridge"].get("security").is_none());
    }

    #[test]
    fn an_openid_issuer_is_described_with_its_audience_and_keys() {
        let doc = document_of(
            "name: demo\nauth:\n  issuer: https://tenant.eu.auth0.com/\n  audience: https://api.example.com\n  user_claim: email\n",
        );
        let text = doc["components"]["securitySchemes"]["accessTokenProtocol"]["description"]
            .as_str()
            .unwrap();
        assert!(text.contains("`https://tenant.eu.auth0.com/`"), "{text}");
        assert!(text.contains("`https://api.example.com`"), "{text}");
        assert!(
            text.contains("https://tenant.eu.auth0.com/.well-known/jwks.json"),
            "{text}"
        );
        assert!(text.contains("`email` claim"), "{text}");
    }

    #[test]
    fn an_open_stack_has_no_security_section() {
        let doc = document_of("name: demo\n");
        assert!(doc["components"].get("securitySchemes").is_none());
        assert!(doc["servers"]["websocket"].get("security").is_none());
    }
}
