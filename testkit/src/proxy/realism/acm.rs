//! ACM in realism mode, beyond what custom domains need of it (`domain.rs`): a certificate ACM has
//! just made is unknown to DescribeCertificate for a while (ACM documents that a new certificate
//! may take seconds to be readable), and RequestCertificate with an idempotency token used in the
//! last hour answers that request's certificate, even once it is deleted, without making a new one.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Behaviour, Exchange, Verdict, Window, World};

/// How long ACM remembers an idempotency token.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub(super) struct Certificates {
    /// Certificate ARN -> since RequestCertificate made it.
    made: HashMap<String, Window>,
    /// Idempotency token -> the certificate its request got, and when.
    tokens: HashMap<String, (String, std::time::Instant)>,
}

pub(super) fn before(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    let body = exchange.json_body();
    match exchange.operation {
        "RequestCertificate" if world.is_on(Behaviour::CertificateTokens) => {
            let token = body["IdempotencyToken"].as_str()?;
            let now = world.now();
            let (arn, at) = world.certificates.tokens.get(token)?;
            (now.saturating_duration_since(*at) < TOKEN_LIFETIME).then(|| Verdict::Answer {
                behaviour: Behaviour::CertificateTokens,
                body: json!({ "CertificateArn": arn }),
            })
        }
        "DescribeCertificate" | "ListTagsForCertificate" => {
            let arn = body["CertificateArn"].as_str()?;
            let made = world.certificates.made.get(arn);
            world
                .within(Behaviour::NewCertificateUnknown, made)
                .then(|| Verdict::Error {
                    behaviour: Behaviour::NewCertificateUnknown,
                    status: 400,
                    code: "ResourceNotFoundException",
                    message: format!("Could not find certificate {arn}."),
                })
        }
        _ => None,
    }
}

/// RequestCertificate's answer: the certificate's age, and the token that asked for it.
pub(super) fn after(world: &mut World, exchange: &Exchange, answer: &Value) {
    if exchange.operation != "RequestCertificate" {
        return;
    }
    let Some(arn) = answer["CertificateArn"].as_str() else {
        return;
    };
    let window = world.open_window();
    world.certificates.made.entry(arn.to_string()).or_insert(window);
    if let Some(token) = exchange.json_body()["IdempotencyToken"].as_str() {
        let now = world.now();
        world
            .certificates
            .tokens
            .entry(token.to_string())
            .or_insert((arn.to_string(), now));
    }
}
