//! The resources of `domain:`: the certificate (unless the stack gives one), the API domain name,
//! its mapping to the stage and the alias records; and, taken away, what an earlier `domain:`
//! made (another name, another zone, a certificate replaced by a given one). Pure: no AWS calls.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::tags;
use crate::discovery::Discovered;
use crate::graph::{Key, Target};
use crate::resources::api_mapping::ApiMappingSpec;
use crate::resources::certificate::CertificateSpec;
use crate::resources::dns_record::DnsRecordSpec;
use crate::resources::domain_name::{self, Certificate, DomainNameSpec};
use crate::resources::{Change, Ctx, Ensured, Resource, Retired, State};
use crate::stack::Stack;

const RECORD_KINDS: [&str; 2] = ["A", "AAAA"];

/// What `domain:` needs, and what an earlier one left that this stack file no longer has.
pub(super) fn resources(stack: &Stack, found: &Discovered) -> Vec<Arc<dyn Resource>> {
    let found = found.domain.clone();
    let mut resources: Vec<Arc<dyn Resource>> = Vec::new();
    let certificate = |domain: &str, zone: &str| CertificateSpec {
        domain: domain.to_string(),
        zone: zone.to_string(),
        stack: stack.name.clone(),
        stage: stack.stage.clone(),
        tags: tags(stack),
    };
    if let Some(domain) = &stack.domain {
        let (name, zone) = (&domain.name, &domain.hosted_zone_id);
        let mut domain_tags = tags(stack);
        domain_tags.insert(domain_name::TAG_HOSTED_ZONE.into(), zone.clone());
        match &domain.certificate_arn {
            None => resources.push(Arc::new(certificate(name, zone))),
            // A certificate `up` requested before the stack named one: deleted once API Gateway
            // lets go of it (the delete waits for that, so it needs no order here).
            Some(_) if found.as_ref().is_none_or(|f| f.name == *name) => resources.push(Arc::new(Retired {
                inner: Arc::new(certificate(name, zone)),
                depends_on: Vec::new(),
            })),
            Some(_) => {}
        }
        resources.push(Arc::new(DomainNameSpec {
            name: name.clone(),
            zone: zone.clone(),
            certificate: match &domain.certificate_arn {
                Some(arn) => Certificate::Given(arn.clone()),
                None => Certificate::Requested,
            },
            tags: domain_tags,
        }));
        resources.push(Arc::new(ApiMappingSpec {
            domain: name.clone(),
            stage: stack.stage.clone(),
        }));
        for kind in RECORD_KINDS {
            resources.push(Arc::new(DnsRecordSpec {
                domain: name.clone(),
                zone: zone.clone(),
                kind,
                expected: None,
                take_over: domain.take_over_records,
            }));
        }
    }
    let Some(found) = found else {
        return resources;
    };
    let records = |target: &Target| -> Vec<Arc<dyn Resource>> {
        RECORD_KINDS
            .into_iter()
            .map(|kind| -> Arc<dyn Resource> {
                Arc::new(DnsRecordSpec {
                    domain: target.name.clone(),
                    zone: target.zone.clone(),
                    kind,
                    expected: Some(target.clone()),
                    take_over: false,
                })
            })
            .collect()
    };
    let parts = match &stack.domain {
        Some(domain) if domain.name == found.name && domain.hosted_zone_id == found.zone => return resources,
        // Same name, records moved to another zone: only the old records go.
        Some(domain) if domain.name == found.name => records(&found),
        _ => {
            let mut parts = records(&found);
            parts.push(Arc::new(ApiMappingSpec {
                domain: found.name.clone(),
                stage: stack.stage.clone(),
            }));
            let mut found_tags = tags(stack);
            found_tags.insert(domain_name::TAG_HOSTED_ZONE.into(), found.zone.clone());
            parts.push(Arc::new(DomainNameSpec {
                name: found.name.clone(),
                zone: found.zone.clone(),
                certificate: Certificate::Requested,
                tags: found_tags,
            }));
            parts.push(Arc::new(certificate(&found.name, &found.zone)));
            parts
        }
    };
    resources.push(Arc::new(RetiredDomain {
        name: found.name.clone(),
        parts,
    }));
    resources
}

/// What an earlier `domain:` made, taken away in the one order AWS accepts whether `up` or `down`
/// runs it: records and mapping, then the domain name, then the certificate it used. (A `Retired`
/// per part would be ordered by the engine, which reverses the order for `down`.)
struct RetiredDomain {
    name: String,
    parts: Vec<Arc<dyn Resource>>,
}

impl RetiredDomain {
    async fn take_away(&self, ctx: Ctx<'_>) -> anyhow::Result<Change> {
        let mut change = Change::Absent;
        for part in &self.parts {
            if part.destroy(ctx).await? == Change::Deleted {
                change = Change::Deleted;
            }
        }
        Ok(change)
    }
}

impl Resource for RetiredDomain {
    fn kind(&self) -> &'static str {
        "custom domain"
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn key(&self) -> Key {
        Key::domain_name().retired()
    }
    fn depends_on(&self) -> Vec<Key> {
        Vec::new()
    }
    #[cfg(test)]
    fn tags(&self) -> Option<&crate::resources::Tags> {
        None
    }
    fn inspect<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, anyhow::Result<State>> {
        Box::pin(async move {
            for part in &self.parts {
                if matches!(part.inspect(ctx).await?, State::InSync | State::Drifted(_)) {
                    return Ok(State::Unwanted);
                }
            }
            Ok(State::InSync)
        })
    }
    fn ensure<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, anyhow::Result<Ensured>> {
        Box::pin(async move {
            let change = match self.take_away(ctx).await? {
                Change::Deleted => Change::Deleted,
                _ => Change::Unchanged,
            };
            Ok(Ensured { change, output: None })
        })
    }
    fn destroy<'a>(&'a self, ctx: Ctx<'a>) -> BoxFuture<'a, anyhow::Result<Change>> {
        Box::pin(self.take_away(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str, found: Option<&str>) -> Vec<String> {
        let stack = crate::stack::parse(std::path::Path::new("s.yaml"), text).unwrap();
        let found = Discovered {
            domain: found.map(|found| {
                let words: Vec<&str> = found.split(' ').collect();
                Target {
                    name: words[0].into(),
                    zone: words[1].into(),
                    regional_name: words[2].into(),
                    regional_zone: words[3].into(),
                }
            }),
            ..Discovered::default()
        };
        resources(&stack, &found).iter().map(|r| r.key().to_string()).collect()
    }

    const FOUND: &str = "ws.example.com Z1 d-abc.execute-api.us-east-1.amazonaws.com Z1UJRXOUMOOFQ8";

    #[test]
    fn a_domain_brings_its_resources_and_takes_away_what_changed() {
        let requested = "name: demo\ndomain:\n  name: ws.example.com\n  hosted_zone_id: Z1\n";
        let live = [
            "certificate",
            "domain-name",
            "api-mapping",
            "dns-record/A",
            "dns-record/AAAA",
        ];
        assert_eq!(keys(requested, None), live);
        assert_eq!(keys(requested, Some(FOUND)), live, "nothing to take away");
        assert!(keys("name: demo\n", None).is_empty());
        assert_eq!(keys("name: demo\n", Some(FOUND)), ["retired/domain-name"]);
        let renamed = requested.replace("ws.example.com", "live.example.com");
        assert_eq!(keys(&renamed, Some(FOUND)).last().unwrap(), "retired/domain-name");
        let given = format!("{requested}  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc\n");
        assert_eq!(
            keys(&given, Some(FOUND)),
            [
                "retired/certificate",
                "domain-name",
                "api-mapping",
                "dns-record/A",
                "dns-record/AAAA"
            ]
        );
    }
}
