//! The API Gateway custom domain name of `domain:`: REGIONAL, TLS 1.2, dualstack (the AAAA record
//! resolves only then), with the stack's certificate (requested by `up`, or given by ARN and
//! checked here) and tags. Found again without state by its tags (`discovery`), which also name
//! the hosted zone its alias records are in, so that a stack file without `domain:` can take them
//! away.

use std::collections::HashMap;

use anyhow::{bail, Result};
use aws_sdk_acm::types::CertificateStatus;
use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, IpAddressType, SecurityPolicy};

use super::certificate;
use super::errors::{deleted, found};
use super::tagging::TagsAt;
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Target, Value};

impl Key {
    /// The custom domain name; it hands on its `Target`.
    pub fn domain_name() -> Key {
        Key::one("domain-name")
    }
}

/// The tag naming the Route 53 hosted zone of the domain's alias records.
pub const TAG_HOSTED_ZONE: &str = "wsstack:hosted-zone";

/// Which certificate the domain uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Certificate {
    /// The one `up` requests (`Key::certificate()` hands its ARN on).
    Requested,
    /// The user's, by ARN: checked, never changed.
    Given(String),
}

#[derive(Debug, Clone)]
pub struct DomainNameSpec {
    pub name: String,
    pub zone: String,
    pub certificate: Certificate,
    pub tags: Tags,
}

pub struct Observed {
    arn: String,
    configuration: Option<DomainNameConfiguration>,
    tags: Tags,
}

pub(crate) fn target(name: &str, zone: &str, configuration: Option<&DomainNameConfiguration>) -> Option<Target> {
    let configuration = configuration?;
    Some(Target {
        name: name.to_string(),
        zone: zone.to_string(),
        regional_name: configuration.api_gateway_domain_name()?.to_string(),
        regional_zone: configuration.hosted_zone_id()?.to_string(),
    })
}

/// Whether `covered` (a certificate name, maybe `*.parent`) covers `name`.
fn covers(covered: &str, name: &str) -> bool {
    match covered.strip_prefix("*.") {
        Some(parent) => name
            .split_once('.')
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(parent)),
        None => covered.eq_ignore_ascii_case(name),
    }
}

/// A certificate given by ARN must be ISSUED and cover the domain, else API Gateway refuses it
/// or clients do.
async fn check_given(aws: &Aws, arn: &str, name: &str) -> Result<()> {
    let region = arn.split(':').nth(3).unwrap_or_default();
    if region != aws.region || arn.split(':').nth(1) != Some(aws.arns.partition.as_str()) {
        bail!(
            "certificate {arn} (domain.certificate_arn) is not in {} {}: a regional custom domain needs an ACM certificate of its own region",
            aws.arns.partition,
            aws.region
        );
    }
    let Some(detail) = certificate::describe(aws, arn).await? else {
        bail!(
            "certificate {arn} (domain.certificate_arn) does not exist in ACM in {}",
            aws.region
        );
    };
    if detail.status() != Some(&CertificateStatus::Issued) {
        bail!(
            "certificate {arn} (domain.certificate_arn) is {}, not ISSUED: API Gateway takes only an issued certificate",
            certificate::status(&detail)
        );
    }
    let mut names: Vec<&str> = detail
        .subject_alternative_names()
        .iter()
        .map(String::as_str)
        .chain(detail.domain_name())
        .collect();
    names.sort_unstable();
    names.dedup();
    if !names.iter().any(|covered| covers(covered, name)) {
        bail!(
            "certificate {arn} (domain.certificate_arn) covers {}, not {name}",
            names.join(", ")
        );
    }
    Ok(())
}

impl DomainNameSpec {
    fn certificate_arn<'a>(&'a self, ctx: Ctx<'a>) -> Option<&'a str> {
        match &self.certificate {
            Certificate::Given(arn) => Some(arn),
            Certificate::Requested => ctx.resolved.arn(&Key::certificate()),
        }
    }

    /// The configuration to write, after checking a given certificate.
    async fn configuration(&self, ctx: Ctx<'_>) -> Result<DomainNameConfiguration> {
        let Some(arn) = self.certificate_arn(ctx) else {
            bail!("internal: the certificate of {} is unknown", self.name);
        };
        if let Certificate::Given(arn) = &self.certificate {
            check_given(ctx.aws, arn, &self.name).await?;
        }
        Ok(DomainNameConfiguration::builder()
            .certificate_arn(arn)
            .endpoint_type(EndpointType::Regional)
            .security_policy(SecurityPolicy::Tls12)
            .ip_address_type(IpAddressType::Dualstack)
            .build())
    }
}

impl Lifecycle for DomainNameSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("API domain name", Key::domain_name(), &self.name).tagged(&self.tags)
    }
    fn depends_on(&self) -> Vec<Key> {
        match self.certificate {
            Certificate::Requested => vec![Key::certificate()],
            Certificate::Given(_) => Vec::new(),
        }
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let call = ctx.aws.apigateway.get_domain_name().domain_name(&self.name);
        let Some(output) = found(call.send().await, || format!("reading API domain name {}", self.name))? else {
            return Ok(None);
        };
        let arn = output.domain_name_arn.clone().unwrap_or_else(|| {
            format!(
                "arn:{}:apigateway:{}::/domainnames/{}",
                ctx.aws.arns.partition, ctx.aws.region, self.name
            )
        });
        Ok(Some(Observed {
            arn,
            configuration: output.domain_name_configurations.unwrap_or_default().into_iter().next(),
            tags: output.tags.unwrap_or_default().into_iter().collect(),
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::ApiGateway(o.arn.clone())))
    }

    fn diffs(&self, ctx: Ctx<'_>, observed: &Observed) -> Vec<Diff> {
        let Some(c) = &observed.configuration else {
            return vec![Diff::new("configuration", "(none)", "REGIONAL")];
        };
        let mut diffs = Vec::new();
        if c.endpoint_type() != Some(&EndpointType::Regional) {
            let current = c.endpoint_type().map(|t| t.as_str()).unwrap_or("(none)");
            diffs.push(Diff::new("endpoint type", current, "REGIONAL"));
        }
        if c.security_policy() != Some(&SecurityPolicy::Tls12) {
            let current = c.security_policy().map(|p| p.as_str()).unwrap_or("(none)");
            diffs.push(Diff::new("security policy", current, "TLS_1_2"));
        }
        if c.ip_address_type() != Some(&IpAddressType::Dualstack) {
            let current = c.ip_address_type().map(|t| t.as_str()).unwrap_or("ipv4");
            diffs.push(Diff::new("IP address type", current, "dualstack"));
        }
        // The requested certificate's ARN is known once `up` has ensured it; `status` compares
        // no run's outputs, and the certificate shows its own state there.
        if let Some(desired) = self.certificate_arn(ctx) {
            if c.certificate_arn() != Some(desired) {
                diffs.push(Diff::new(
                    "certificate",
                    c.certificate_arn().unwrap_or("(none)"),
                    desired,
                ));
            }
        }
        diffs
    }

    fn output(&self, observed: &Observed) -> Option<Value> {
        target(&self.name, &self.zone, observed.configuration.as_ref()).map(Value::DomainTarget)
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let configuration = self.configuration(ctx).await?;
        let tags: HashMap<String, String> = self.tags.clone().into_iter().collect();
        let call = ctx
            .aws
            .apigateway
            .create_domain_name()
            .domain_name(&self.name)
            .domain_name_configurations(configuration)
            .set_tags(Some(tags));
        match call.send().await {
            Ok(output) => {
                let configuration = output.domain_name_configurations.unwrap_or_default().into_iter().next();
                Ok(Created::New(
                    target(&self.name, &self.zone, configuration.as_ref()).map(Value::DomainTarget),
                ))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(Created::AlreadyExists),
            Err(e) => Err(sdk_error(format!("creating API domain name {}", self.name), e)),
        }
    }

    async fn update(&self, ctx: Ctx<'_>, _observed: &Observed) -> Result<()> {
        let configuration = self.configuration(ctx).await?;
        let call = ctx.aws.apigateway.update_domain_name().domain_name(&self.name);
        call.domain_name_configurations(configuration)
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating API domain name {}", self.name), e))?;
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.apigateway.delete_domain_name().domain_name(&self.name);
        deleted(call.send().await, || format!("deleting API domain name {}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_covered_exactly_or_by_one_wildcard_label() {
        assert!(covers("ws.example.com", "ws.example.com"));
        assert!(covers("*.example.com", "ws.example.com"));
        assert!(!covers("*.example.com", "a.ws.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("example.com", "ws.example.com"));
    }
}
