//! Custom domains in realism mode: what API Gateway and ACM say that the emulator does not.
//! API Gateway domain names get the regional endpoint AWS assigns (`apiGatewayDomainName`,
//! `hostedZoneId`, `domainNameStatus`); a new certificate shows its DNS validation record only a
//! while after RequestCertificate; a certificate stays in use for a while after its domain name
//! is deleted, and while the domain lives; the updates of a domain name and its mappings and the
//! tags on its ARN, which the emulator refuses, are answered and shown in later reads.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Behaviour, Exchange, Verdict, Window, World};

#[derive(Default)]
pub(super) struct Domains {
    /// Certificate ARN -> since RequestCertificate made it.
    requested: HashMap<String, Window>,
    /// Domain name -> its certificate ARN.
    certificates: HashMap<String, String>,
    /// Certificate ARN -> since the domain name using it was deleted.
    released: HashMap<String, Window>,
    /// Domain name -> the configurations its last UpdateDomainName set.
    configured: HashMap<String, Value>,
    /// API mapping id -> the API id and stage its last UpdateApiMapping set.
    remapped: HashMap<String, (Value, Value)>,
    /// Domain name -> tags set and tag keys removed through the proxy since it was created.
    tagged: HashMap<String, (BTreeMap<String, Value>, BTreeSet<String>)>,
}

/// The domain name of an API Gateway domain name ARN (`arn:...:apigateway:{region}::/domainnames/{name}`).
fn domain_of_arn(arn: &str) -> Option<String> {
    arn.split_once("::/domainnames/").map(|(_, name)| name.to_string())
}

fn answer(body: Value) -> Verdict {
    Verdict::Answer {
        behaviour: Behaviour::DomainUpdates,
        body,
    }
}

/// The updates of a domain name and its mappings that the emulator cannot make: answered here and
/// remembered for later reads (`after_apigateway`).
pub(super) fn before_apigateway(world: &mut World, exchange: &Exchange) -> Option<Verdict> {
    if !world.is_on(Behaviour::DomainUpdates) {
        return None;
    }
    let segments = exchange.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = exchange.json_body();
    let domains = &mut world.domains;
    match (exchange.method, parts.as_slice()) {
        ("PATCH", ["v2", "domainnames", name]) => {
            let configurations = body["domainNameConfigurations"].clone();
            domains.configured.insert(name.to_string(), configurations.clone());
            Some(answer(
                json!({"domainName": name, "domainNameConfigurations": configurations}),
            ))
        }
        ("PATCH", ["v2", "domainnames", _, "apimappings", id]) => {
            domains
                .remapped
                .insert(id.to_string(), (body["apiId"].clone(), body["stage"].clone()));
            Some(answer(json!({
                "apiMappingId": id,
                "apiId": body["apiId"],
                "stage": body["stage"],
                "apiMappingKey": body.get("apiMappingKey").cloned().unwrap_or(json!(""))
            })))
        }
        ("POST", ["v2", "tags", arn]) => {
            let (set, removed) = domains.tagged.entry(domain_of_arn(arn)?).or_default();
            for (key, value) in body["tags"].as_object()? {
                removed.remove(key);
                set.insert(key.clone(), value.clone());
            }
            Some(answer(json!({})))
        }
        ("DELETE", ["v2", "tags", arn]) => {
            let (set, removed) = domains.tagged.entry(domain_of_arn(arn)?).or_default();
            let keys = exchange
                .query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("tagKeys="))
                .map(|key| {
                    percent_encoding::percent_decode_str(key)
                        .decode_utf8_lossy()
                        .into_owned()
                });
            for key in keys {
                set.remove(&key);
                removed.insert(key);
            }
            Some(answer(json!({})))
        }
        _ => None,
    }
}

/// A domain name as read, with what the proxy's updates changed in it.
fn updated(world: &World, domain: &mut Value) -> Option<Behaviour> {
    if !world.is_on(Behaviour::DomainUpdates) {
        return None;
    }
    let name = domain["domainName"].as_str()?.to_string();
    let mut changed = false;
    if let Some(configurations) = world.domains.configured.get(&name) {
        domain["domainNameConfigurations"] = configurations.clone();
        changed = true;
    }
    if let Some((set, removed)) = world.domains.tagged.get(&name) {
        if !domain["tags"].is_object() {
            domain["tags"] = json!({});
        }
        let tags = domain["tags"].as_object_mut()?;
        tags.retain(|key, _| !removed.contains(key));
        tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        changed = true;
    }
    changed.then_some(Behaviour::DomainUpdates)
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
                let window = world.open_window();
                world.domains.requested.entry(arn.to_string()).or_insert(window);
            }
            Vec::new()
        }
        "DescribeCertificate" => {
            let Some(arn) = body["Certificate"]["CertificateArn"].as_str().map(String::from) else {
                return Vec::new();
            };
            let Some(options) = body["Certificate"]["DomainValidationOptions"].as_array_mut() else {
                return Vec::new();
            };
            if !world.within(Behaviour::LateValidationRecord, world.domains.requested.get(&arn)) {
                return Vec::new();
            }
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
            world.domains.configured.remove(&name);
            world.domains.tagged.remove(&name);
            let certificate = body["domainNameConfigurations"][0]["certificateArn"].as_str();
            if let Some(certificate) = certificate {
                world.domains.certificates.insert(name, certificate.to_string());
            }
            endpoint(world, exchange.region, body).into_iter().collect()
        }
        ("DELETE", ["v2", "domainnames", name]) => {
            world.domains.configured.remove(*name);
            world.domains.tagged.remove(*name);
            if let Some(certificate) = world.domains.certificates.remove(*name) {
                let window = world.open_window();
                world.domains.released.insert(certificate, window);
            }
            Vec::new()
        }
        ("GET", ["v2", "domainnames", _]) => {
            let mut rewritten: Vec<Behaviour> = updated(world, body).into_iter().collect();
            rewritten.extend(endpoint(world, exchange.region, body));
            rewritten
        }
        ("GET", ["v2", "domainnames"]) => {
            let mut rewritten = Vec::new();
            if let Some(items) = body["items"].as_array_mut() {
                for domain in items {
                    rewritten.extend(updated(world, domain));
                    rewritten.extend(endpoint(world, exchange.region, domain));
                }
            }
            rewritten
        }
        ("GET", ["v2", "domainnames", _, "apimappings"]) if world.is_on(Behaviour::DomainUpdates) => {
            let mut rewritten = Vec::new();
            for mapping in body["items"].as_array_mut().into_iter().flatten() {
                let id = mapping["apiMappingId"].as_str().unwrap_or_default().to_string();
                if let Some((api, stage)) = world.domains.remapped.get(&id) {
                    if !api.is_null() {
                        mapping["apiId"] = api.clone();
                    }
                    if !stage.is_null() {
                        mapping["stage"] = stage.clone();
                    }
                    rewritten.push(Behaviour::DomainUpdates);
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
