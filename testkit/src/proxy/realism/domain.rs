//! Custom domains in realism mode: what API Gateway and ACM say that the emulator does not.
//! API Gateway domain names get the regional endpoint AWS assigns (`apiGatewayDomainName`,
//! `hostedZoneId`, `domainNameStatus`); a new certificate shows its DNS validation record only a
//! while after RequestCertificate; a certificate stays in use for a while after its domain name
//! is deleted, and while the domain lives.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use super::{Behaviour, Exchange, Verdict, World};

#[derive(Default)]
pub(super) struct Domains {
    /// Certificate ARN -> when RequestCertificate made it.
    requested: HashMap<String, Instant>,
    /// Domain name -> its certificate ARN.
    certificates: HashMap<String, String>,
    /// Certificate ARN -> when the domain name using it was deleted.
    released: HashMap<String, Instant>,
}

/// API Gateway's hosted zone for regional endpoints, per region (from the AWS endpoints table).
fn regional_zone(region: &str) -> &'static str {
    match region {
        "us-east-2" => "ZOJJZC49E0EPZ",
        "us-west-2" => "Z2OJLYMUO9EFXC",
        "eu-west-1" => "ZLY8HYME6SFDD",
        "eu-central-1" => "Z1U9ULNL0V5AJ3",
        _ => "Z1UJRXOUMOOFQ8",
    }
}

/// `d-` and ten lowercase letters and digits, stable per domain name, as API Gateway assigns.
fn endpoint_id(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let id: String = (0..10)
        .map(|i| DIGITS[((hash >> (i * 6)) % 36) as usize] as char)
        .collect();
    format!("d-{id}")
}

/// DeleteCertificate of a certificate a domain name uses, or used moments ago: refused.
pub(super) fn before_acm(world: &World, exchange: &Exchange) -> Option<Verdict> {
    if exchange.operation != "DeleteCertificate" || !world.is_on(Behaviour::CertificateInUse) {
        return None;
    }
    let arn = exchange.json_body()["CertificateArn"].as_str()?.to_string();
    let in_use = world.domains.certificates.values().any(|c| *c == arn)
        || world.within(Behaviour::CertificateInUse, world.domains.released.get(&arn));
    in_use.then(|| Verdict::Error {
        behaviour: Behaviour::CertificateInUse,
        status: 400,
        code: "ResourceInUseException",
        message: format!("Certificate {arn} in use."),
    })
}

pub(super) fn after_acm(world: &mut World, exchange: &Exchange, body: &mut Value) -> Vec<Behaviour> {
    match exchange.operation {
        "RequestCertificate" => {
            if let Some(arn) = body["CertificateArn"].as_str() {
                world
                    .domains
                    .requested
                    .entry(arn.to_string())
                    .or_insert_with(Instant::now);
            }
            Vec::new()
        }
        "DescribeCertificate" => {
            let Some(arn) = body["Certificate"]["CertificateArn"].as_str().map(String::from) else {
                return Vec::new();
            };
            if !world.within(Behaviour::LateValidationRecord, world.domains.requested.get(&arn)) {
                return Vec::new();
            }
            let Some(options) = body["Certificate"]["DomainValidationOptions"].as_array_mut() else {
                return Vec::new();
            };
            for option in options.iter_mut() {
                if let Some(option) = option.as_object_mut() {
                    option.remove("ResourceRecord");
                }
            }
            vec![Behaviour::LateValidationRecord]
        }
        _ => Vec::new(),
    }
}

pub(super) fn after_apigateway(world: &mut World, exchange: &Exchange, body: &mut Value) -> Vec<Behaviour> {
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (exchange.method, parts.as_slice()) {
        ("POST", ["v2", "domainnames"]) => {
            let name = body["domainName"].as_str().unwrap_or_default().to_string();
            let certificate = body["domainNameConfigurations"][0]["certificateArn"].as_str();
            if let Some(certificate) = certificate {
                world.domains.certificates.insert(name, certificate.to_string());
            }
            endpoint(world, exchange.region, body).into_iter().collect()
        }
        ("DELETE", ["v2", "domainnames", name]) => {
            if let Some(certificate) = world.domains.certificates.remove(*name) {
                world.domains.released.insert(certificate, Instant::now());
            }
            Vec::new()
        }
        ("GET", ["v2", "domainnames", _]) => endpoint(world, exchange.region, body).into_iter().collect(),
        ("GET", ["v2", "domainnames"]) => {
            let mut rewritten = Vec::new();
            if let Some(items) = body["items"].as_array_mut() {
                for domain in items {
                    rewritten.extend(endpoint(world, exchange.region, domain));
                }
            }
            rewritten
        }
        _ => Vec::new(),
    }
}

/// The regional endpoint in each configuration of a domain name.
fn endpoint(world: &World, region: &str, domain: &mut Value) -> Option<Behaviour> {
    if !world.is_on(Behaviour::DomainEndpoint) {
        return None;
    }
    let name = domain["domainName"].as_str()?.to_string();
    for configuration in domain["domainNameConfigurations"].as_array_mut()? {
        let object = configuration.as_object_mut()?;
        object.insert(
            "apiGatewayDomainName".into(),
            json!(format!("{}.execute-api.{region}.amazonaws.com", endpoint_id(&name))),
        );
        object.insert("hostedZoneId".into(), json!(regional_zone(region)));
        object.insert("domainNameStatus".into(), json!("AVAILABLE"));
    }
    Some(Behaviour::DomainEndpoint)
}
