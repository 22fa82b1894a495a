//! The checks of `domain:`: a DNS name API Gateway and ACM take, a Route 53 hosted zone id, and a
//! certificate ARN of ACM in the stack's region. No AWS call: whether the zone and the
//! certificate exist, and what the certificate covers, `up` finds out.

use super::super::schema::Domain;
use super::Problem;

pub(super) fn check(problems: &mut Vec<Problem>, domain: &Domain, region: Option<&str>) {
    if let Err(why) = dns_name(&domain.name) {
        problems.push(Problem::new("domain.name", format!("`{}` {why}", domain.name)));
    }
    if !is_zone_id(&domain.hosted_zone_id) {
        let hint = if domain.hosted_zone_id.starts_with("/hostedzone/") {
            " (give the id without `/hostedzone/`)"
        } else {
            ""
        };
        problems.push(Problem::new(
            "domain.hosted_zone_id",
            format!(
                "`{}` is not a Route 53 hosted zone id: up to 32 capitals and digits (Z0123456789ABCDEFGHIJ), as `aws route53 list-hosted-zones` shows it{hint}",
                domain.hosted_zone_id
            ),
        ));
    }
    if let Some(arn) = &domain.certificate_arn {
        if let Err(why) = certificate_arn(arn, region) {
            problems.push(Problem::new("domain.certificate_arn", format!("`{arn}` {why}")));
        }
    }
}

/// Lowercase labels of letters, digits and inner hyphens, at least two, 253 characters at most;
/// no wildcard (a WebSocket API is served on one name).
fn dns_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("is longer than the 253 characters of a DNS name");
    }
    if name.ends_with('.') {
        return Err("ends with a dot: give the name without it");
    }
    if name.contains('*') {
        return Err("is a wildcard: give the one name clients connect to");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("has capitals: DNS names are compared in lowercase, write it so");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("is not a DNS name with a domain (e.g. ws.example.com)");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !labels.iter().all(|l| label_ok(l)) {
        return Err("is not a DNS name: labels of 1 to 63 letters, digits and inner hyphens, separated by dots");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err("ends in a number: an IP address cannot have a certificate from ACM");
    }
    Ok(())
}

/// AWS's ids start with `Z`; the API only promises up to 32 characters (and the emulator's do not).
fn is_zone_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `arn:{partition}:acm:{region}:{account}:certificate/{id}`, in the stack's region when the
/// stack file names one: API Gateway takes a regional domain's certificate from its own region.
fn certificate_arn(arn: &str, region: Option<&str>) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shape = "is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)";
    let [arn_word, partition, service, cert_region, account, resource] = parts.as_slice() else {
        return Err(shape.into());
    };
    let id = resource.strip_prefix("certificate/").unwrap_or_default();
    if *arn_word != "arn"
        || !partition.starts_with("aws")
        || *service != "acm"
        || !super::is_region(cert_region)
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
        || id.is_empty()
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(shape.into());
    }
    match region {
        Some(region) if region != *cert_region => Err(format!(
            "is in region {cert_region}; the API is in {region}, and a regional custom domain needs a certificate of its own region"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(name: &str, zone: &str, arn: Option<&str>, region: Option<&str>) -> Vec<String> {
        let domain = Domain {
            name: name.into(),
            hosted_zone_id: zone.into(),
            certificate_arn: arn.map(String::from),
            take_over_records: false,
        };
        let mut problems = Vec::new();
        check(&mut problems, &domain, region);
        problems
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    }

    #[test]
    fn a_plain_domain_passes() {
        let arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-123456789012";
        assert!(problems("ws.example.com", "Z0123456789ABCDEF", Some(arn), Some("eu-west-1")).is_empty());
        assert!(problems("ws.example.com", "Z0123456789ABCDEF", None, None).is_empty());
    }

    #[test]
    fn each_bad_part_is_named() {
        for (name, expected) in [
            ("localhost", "with a domain"),
            ("ws.example.com.", "ends with a dot"),
            ("*.example.com", "wildcard"),
            ("WS.example.com", "capitals"),
            ("ws_1.example.com", "labels of 1 to 63"),
            ("-ws.example.com", "labels of 1 to 63"),
            ("10.0.0.1", "IP address"),
        ] {
            let found = problems(name, "Z1", None, None);
            assert!(
                found.len() == 1 && found[0].starts_with("domain.name:") && found[0].contains(expected),
                "{name}: {found:?}"
            );
        }
        let zone = problems("ws.example.com", "/hostedzone/Z123", None, None);
        assert!(zone[0].contains("without `/hostedzone/`"), "{zone:?}");
        let other_region = "arn:aws:acm:us-east-1:123456789012:certificate/abc-1";
        let found = problems("ws.example.com", "Z1", Some(other_region), Some("eu-west-1"));
        assert!(
            found[0].contains("region us-east-1; the API is in eu-west-1"),
            "{found:?}"
        );
        let found = problems("ws.example.com", "Z1", Some("arn:aws:iam::123456789012:role/x"), None);
        assert!(found[0].contains("not an ACM certificate ARN"), "{found:?}");
    }
}
